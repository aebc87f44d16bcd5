"""Releases stuck in ``pending-*`` or ``uninstalling`` (anchors §4.1, octo-spec §4.10).

A helm process killed without a chance to clean up (SIGKILL, OOM, a node going away) leaves the
release's newest revision in ``pending-install``, ``pending-upgrade`` or ``pending-rollback``; every
later helm action on it fails with "another operation (install/upgrade/rollback) is in progress".
A killed ``helm uninstall`` leaves it ``uninstalling``, and every later ``upgrade --install`` fails
with "has no deployed releases". The operator never cancels an uninstall itself
(:func:`uninstall_to_completion`), but an operator process can still be killed during one.

Before acting on a release the deploy flow calls :func:`recover_pending_release` (the undeploy
flow runs ``helm uninstall`` directly). It does nothing unless the newest revision is stuck. The
service runs at most one helm process per release, so a stuck release with no helm of ours is left
over; a helm process outside our control (a human, or an orphan of a previous operator process in
the same container) is waited for first, as it may still finish. Then:

* with an earlier revision that was deployed (``deployed``, else the newest ``superseded``):
  ``helm rollback`` to it, which brings back what last worked and unlocks the release;
* with none (a first install that never finished): ``helm uninstall``, so the next install starts
  clean;
* ``uninstalling``: ``helm uninstall`` again, which finishes the interrupted one.

All of it is best effort (octo-spec §4.10): when ``helm history`` fails or prints something
unreadable, when another helm keeps working on the release, or when the rollback or uninstall
fails, that is logged and the deploy goes on; helm's upgrade then reports a release that is still
locked in its own words, as upstream's does.

The caller reports the returned :class:`Recovery` to the controller as a progress message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.ports import HelmPort

log = logging.getLogger(__name__)

PENDING_PREFIX = "pending-"
UNINSTALLING = "uninstalling"
#: Statuses of revisions that ran successfully at some point, in order of preference as rollback target.
_ROLLBACK_TARGETS = ("deployed", "superseded")
FOREIGN_HELM_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Recovery:
    release: str
    status: str
    revision: int
    action: str

    @property
    def message(self) -> str:
        return (
            f"Recovered release {self.release} stuck in {self.status} (revision {self.revision}) "
            f"with no helm process running: {self.action}"
        )


class RecoveryError(DeployFailed):
    """A stuck release could not be unlocked; the message says what was tried (logged, never raised
    out of :func:`recover_pending_release`)."""


def pending_revision(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest revision if it is stuck (pending or uninstalling), else ``None``."""
    if not history:
        return None
    newest = max(history, key=_revision)
    status = str(newest.get("status", ""))
    return newest if status.startswith(PENDING_PREFIX) or status == UNINSTALLING else None


def rollback_target(history: list[dict[str, Any]], pending: int) -> int | None:
    """Rollback target: the newest ``deployed`` revision before ``pending``, else the newest superseded."""
    earlier = [entry for entry in history if _revision(entry) < pending]
    for status in _ROLLBACK_TARGETS:
        candidates = [_revision(entry) for entry in earlier if entry.get("status") == status]
        if candidates:
            return max(candidates)
    return None


def foreign_helm_processes(release: str, namespace: str, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of other helm processes whose arguments name ``release`` in ``namespace`` (Linux only)."""
    found: list[int] = []
    own = os.getpid()
    with contextlib.suppress(OSError):
        for entry in proc.iterdir():
            if not entry.name.isdigit() or int(entry.name) == own:
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            args = [arg.decode(errors="replace") for arg in argv if arg]
            if not args or "helm" not in Path(args[0]).name:
                continue
            if release in args and _names_namespace(args, namespace):
                found.append(int(entry.name))
    return sorted(found)


def _names_namespace(args: list[str], namespace: str) -> bool:
    for index, arg in enumerate(args):
        if arg in ("--namespace", "-n") and index + 1 < len(args) and args[index + 1] == namespace:
            return True
        if arg in (f"--namespace={namespace}", f"-n={namespace}"):
            return True
    return False


async def wait_for_foreign_helm(release: str, namespace: str, timeout: float) -> list[int]:
    """Wait (checking once a second) until no other helm works on the release; returns those still alive."""
    deadline = time.monotonic() + timeout
    pids = foreign_helm_processes(release, namespace)
    if pids:
        log.warning(
            "release %s: helm process(es) %s not started by this operator are working on it; "
            "waiting up to %.0f s",
            release,
            pids,
            timeout,
        )
    while pids and time.monotonic() < deadline:
        await asyncio.sleep(FOREIGN_HELM_POLL_SECONDS)
        pids = foreign_helm_processes(release, namespace)
    return pids


async def recover_pending_release(
    helm: HelmPort,
    release: str,
    namespace: str,
    *,
    timeout_seconds: float,
    foreign_wait_seconds: float | None = None,
) -> Recovery | None:
    """Unlock ``release`` if its newest revision is stuck; ``None`` if it was not stuck or could not
    be unlocked (best effort: the failure is logged with helm's redacted error, the deploy goes on)."""
    try:
        wait = timeout_seconds if foreign_wait_seconds is None else foreign_wait_seconds
        return await _recover(helm, release, namespace, timeout_seconds=timeout_seconds, foreign_wait=wait)
    except RecoveryError as exc:
        log.warning("%s; deploying anyway (the stuck-release recovery is best effort)", exc)
        return None


async def _recover(
    helm: HelmPort,
    release: str,
    namespace: str,
    *,
    timeout_seconds: float,
    foreign_wait: float,
) -> Recovery | None:
    history = await _history(helm, release, namespace)
    pending = pending_revision(history)
    if pending is None:
        return None
    still_running = await wait_for_foreign_helm(release, namespace, foreign_wait)
    if still_running:
        raise RecoveryError(
            f"release {release} is {pending.get('status')} and helm process(es) {still_running} not started "
            "by this operator are still working on it; not interfering"
        )
    history = await _history(helm, release, namespace)  # it may have finished meanwhile
    pending = pending_revision(history)
    if pending is None:
        return None
    status = str(pending.get("status"))
    revision = _revision(pending)
    target = rollback_target(history, revision)
    log.warning("release %s is stuck in %s at revision %d; recovering", release, status, revision)
    try:
        if status == UNINSTALLING:
            await uninstall_to_completion(helm, release, namespace)
            action = "finished the interrupted uninstall"
        elif target is not None:
            await helm.rollback(release, namespace, target, timeout_seconds)
            action = f"rolled back to revision {target}"
        else:
            await uninstall_to_completion(helm, release, namespace)
            action = "uninstalled it (it was never deployed)"
    except HelmError as exc:
        raise RecoveryError(f"release {release} is stuck in {status} and recovery failed: {exc}") from None
    recovery = Recovery(release, status, revision, action)
    log.warning("%s", recovery.message)
    return recovery


async def uninstall_to_completion(helm: HelmPort, release: str, namespace: str) -> None:
    """``helm uninstall``, never interrupted: a cancelled uninstall leaves the release ``uninstalling``.

    When the caller is cancelled meanwhile (a newer deploy, shutdown), helm still runs to its end and
    the cancellation is raised afterwards.
    """
    task = asyncio.ensure_future(helm.uninstall(release, namespace))
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            if not cancelled:
                log.info("release %s: letting the running helm uninstall finish before stopping", release)
            cancelled = True
    if cancelled:
        if not task.cancelled() and task.exception() is not None:
            log.warning("release %s: helm uninstall failed while stopping: %s", release, task.exception())
        raise asyncio.CancelledError
    task.result()  # helm's error, if any


async def _history(helm: HelmPort, release: str, namespace: str) -> list[dict[str, Any]]:
    """``helm history``, best effort: a failure or unreadable output is logged and reads as no history."""
    try:
        return await helm.history(release, namespace)
    except (HelmError, ValueError) as exc:  # ValueError: output that is not the JSON helm promises
        log.warning(
            "release %s: cannot read its helm history (%s); deploying without the stuck-release check",
            release,
            exc,
        )
        return []


def _revision(entry: dict[str, Any]) -> int:
    try:
        return int(entry.get("revision", 0))
    except (TypeError, ValueError):
        return 0
