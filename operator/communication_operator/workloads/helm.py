"""The ``helm`` CLI, run as a child process we can stop cleanly.

Each helm run gets its own process group. Cancelling a run sends SIGTERM to the group (helm then
marks the release failed instead of leaving it locked in ``pending-*``) and SIGKILL after a grace
period. Passwords go through stdin, never argv; stderr is redacted before it leaves this module.

Every run has a deadline (a watchdog): a helm hung on an unreachable API server would otherwise hold
a concurrency slot, or an undeploy, forever. A run with a ``--timeout`` gets that timeout plus
:attr:`HelmCli.deadline_margin`; every other run (``uninstall`` waits up to helm's default 5 min for
its hooks) gets :attr:`HelmCli.operation_deadline`. Past it, helm is stopped as for a cancellation
and the run fails with :data:`HELM_DEADLINE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from communication_operator.redaction import redact, truncate_middle

log = logging.getLogger(__name__)

STDERR_LIMIT = 4000
#: octo-spec §4.1; ``operation`` names its target (``upgrade --install <release>``, ``repo add <alias>``).
HELM_FAILED = "helm {operation} failed with exit code {exit_code}. stderr: {stderr}"
HELM_NOT_RUN = "helm {operation} failed: {stderr}"
#: The stderr part of a run the watchdog stopped (the operator's own text; helm said nothing in time).
HELM_DEADLINE = "no result after {seconds:g} s; stopped by the operator"
#: helm's own default ``--timeout`` (hooks of an uninstall wait that long), plus the margin below.
HELM_DEFAULT_TIMEOUT_SECONDS = 300.0
DEADLINE_MARGIN_SECONDS = 60.0
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True, order=True)
class HelmVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> HelmVersion:
        match = _VERSION.search(text)
        if match is None:
            raise HelmError("version", None, f"cannot read a helm version from {text.strip()[:100]!r}")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    @property
    def rollback_flags(self) -> list[str]:
        """Roll back a failed upgrade: ``--atomic`` on helm 3, ``--rollback-on-failure`` on helm 4."""
        return ["--atomic"] if self.major < 4 else ["--rollback-on-failure"]

    @property
    def wait_flags(self) -> list[str]:
        # helm 4's bare --wait means the kstatus "watcher" strategy; helm 3's is its legacy waiter.
        return ["--wait"] if self.major < 4 else ["--wait=watcher"]

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class HelmError(Exception):
    """A helm run failed; the message is the redacted text the controller sees."""

    def __init__(self, operation: str, exit_code: int | None, stderr: str) -> None:
        self.operation = operation
        self.exit_code = exit_code
        self.stderr = stderr
        if exit_code is None:
            message = HELM_NOT_RUN.format(operation=operation, stderr=stderr)
        else:
            message = HELM_FAILED.format(operation=operation, exit_code=exit_code, stderr=stderr)
        super().__init__(message)

    @property
    def timed_out(self) -> bool:
        return "context deadline exceeded" in self.stderr or "timed out waiting" in self.stderr


class HelmCancelled(HelmError):
    """The run was stopped by us (a newer deploy, an undeploy, or shutdown)."""


class HelmDeadlineExceeded(HelmError):
    """The watchdog stopped a run that gave no result within its deadline."""

    def __init__(self, operation: str, seconds: float) -> None:
        super().__init__(operation, None, HELM_DEADLINE.format(seconds=seconds))

    @property
    def timed_out(self) -> bool:
        return True


@dataclass(frozen=True)
class HelmResult:
    stdout: str
    stderr: str
    seconds: float


@dataclass
class HelmCli:
    binary: str = "helm"
    env: Mapping[str, str] = field(default_factory=dict)
    kill_grace: float = 10.0
    #: Deadline of a run without ``--timeout`` (seconds); one with a timeout gets timeout + margin.
    operation_deadline: float = HELM_DEFAULT_TIMEOUT_SECONDS + DEADLINE_MARGIN_SECONDS
    deadline_margin: float = DEADLINE_MARGIN_SECONDS
    _version: HelmVersion | None = field(default=None, init=False)

    async def version(self) -> HelmVersion:
        if self._version is None:
            result = await self.run(["version", "--template", "{{.Version}}"], operation="version")
            self._version = HelmVersion.parse(result.stdout)
        return self._version

    async def run(
        self,
        args: Sequence[str],
        *,
        operation: str,
        secrets: Iterable[str] = (),
        stdin: str | None = None,
        timeout_seconds: float | None = None,
    ) -> HelmResult:
        """Run ``helm args``; raise :class:`HelmError` (redacted) on a non-zero exit or past the deadline
        (``timeout_seconds``: the ``--timeout`` given to helm, if any)."""
        secret_list = [s for s in secrets if s]
        started = time.monotonic()
        log.debug("running helm %s", redact(" ".join(args), secret_list))
        try:
            process = await asyncio.create_subprocess_exec(
                self.binary,
                *args,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=helm_environment(self.env),
                start_new_session=True,  # its own process group, so we can signal helm and its children
            )
        except FileNotFoundError:
            raise HelmError(operation, None, f"helm binary '{self.binary}' not found") from None
        deadline = (
            self.operation_deadline if timeout_seconds is None else timeout_seconds + self.deadline_margin
        )
        try:
            async with asyncio.timeout(deadline):
                stdout, stderr = await process.communicate(stdin.encode() if stdin is not None else None)
        except asyncio.CancelledError:
            await self._stop(process)
            raise
        except TimeoutError:
            log.warning("helm %s gave no result within %.0f s; stopping it", operation, deadline)
            await self._stop(process)
            raise HelmDeadlineExceeded(operation, deadline) from None
        seconds = time.monotonic() - started
        out = stdout.decode(errors="replace")
        err = stderr.decode(errors="replace")
        if process.returncode != 0:
            raise HelmError(operation, process.returncode, failure_stderr(err, secret_list))
        return HelmResult(out, err, seconds)

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM the group so helm can record the failure; SIGKILL it after the grace period."""
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), self.kill_grace)
        except TimeoutError:
            log.warning("helm (pid %d) ignored SIGTERM for %.0f s; killing it", process.pid, self.kill_grace)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    # -- operations ----------------------------------------------------------------------------------

    async def repo_add(self, alias: str, url: str, username: str | None, password: str | None) -> None:
        args = ["repo", "add", alias, url, "--force-update"]
        if username:
            args += ["--username", username]
        if password:
            args.append("--password-stdin")
        await self.run(args, operation=f"repo add {alias}", secrets=[password or ""], stdin=password or None)

    async def repo_update(self, alias: str) -> None:
        await self.run(["repo", "update", alias], operation=f"repo update {alias}")

    async def registry_login(self, host: str, username: str, password: str) -> None:
        await self.run(
            ["registry", "login", host, "--username", username, "--password-stdin"],
            operation="registry login",
            secrets=[password],
            stdin=password,
        )

    async def upgrade_install(
        self,
        release: str,
        chart_ref: str,
        *,
        namespace: str,
        values_files: Sequence[Path],
        chart_version: str | None,
        timeout_seconds: float,
        history_max: int,
        labels: Mapping[str, str],
        dry_run: bool = False,
        set_values: Mapping[str, str] | None = None,
        force_conflicts: bool = False,
        secrets: Iterable[str] = (),
    ) -> HelmResult:
        version = await self.version()
        # octo-spec §4.3 argument order: the version (when given) comes before the namespace.
        args = ["upgrade", "--install", release, chart_ref]
        if chart_version:
            args += ["--version", chart_version]
        args += ["--namespace", namespace]
        if dry_run:
            args.append("--dry-run=server")
        else:
            args += [*version.rollback_flags, *version.wait_flags, "--timeout", f"{int(timeout_seconds)}s"]
            args += ["--history-max", str(history_max)]
            if force_conflicts and version.major >= 4:  # server-side apply only; never on the dry run
                args.append("--force-conflicts")
            if labels:
                args += ["--labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items()))]
        for path in values_files:
            args += ["-f", str(path)]
        for key, value in (set_values or {}).items():
            args += ["--set", f"{key}={escape_set_value(value)}"]
        operation = "upgrade --install --dry-run=server" if dry_run else "upgrade --install"
        return await self.run(
            args,
            operation=f"{operation} {release}",
            secrets=secrets,
            timeout_seconds=timeout_seconds if not dry_run else None,
        )

    async def uninstall(self, release: str, namespace: str) -> HelmResult:
        """octo-spec §4.4 exactly: no ``--wait`` (the resources go away in the background, and the
        per-release Secret is deleted right after) and helm's default hook timeout."""
        return await self.run(
            ["uninstall", release, "--namespace", namespace, "--ignore-not-found"],
            operation=f"uninstall {release}",
        )

    async def history(self, release: str, namespace: str, max_revisions: int = 20) -> list[dict[str, Any]]:
        """Newest last; empty when the release does not exist."""
        try:
            result = await self.run(
                ["history", release, "--namespace", namespace, "--max", str(max_revisions), "-o", "json"],
                operation="history",
            )
        except HelmError as exc:
            if "not found" in exc.stderr:
                return []
            raise
        entries = json.loads(result.stdout or "[]")
        return [e for e in entries if isinstance(e, dict)]

    async def rollback(self, release: str, namespace: str, revision: int, timeout_seconds: float) -> None:
        await self.run(
            [
                "rollback",
                release,
                str(revision),
                "--namespace",
                namespace,
                "--timeout",
                f"{int(timeout_seconds)}s",
            ],
            operation="rollback",
            timeout_seconds=timeout_seconds,
        )

    async def list_releases(
        self, namespace: str, selector: str | None = None, name_filter: str | None = None
    ) -> list[dict[str, Any]]:
        """``helm list`` of every status; ``name_filter`` is helm's regular expression on release names."""
        version = await self.version()
        # helm 4 lists every status by default and has no --all; helm 3 needs it for pending/failed.
        args = ["list", "--namespace", namespace, "-o", "json", "--max", "10000"]
        if version.major < 4:
            args.append("--all")
        if selector:
            args += ["--selector", selector]
        if name_filter:
            args += ["--filter", name_filter]
        result = await self.run(args, operation="list")
        entries = json.loads(result.stdout or "[]")
        return [e for e in entries if isinstance(e, dict)]


def failure_stderr(stderr: str, secrets: Iterable[str], limit: int = STDERR_LIMIT) -> str:
    """helm's stderr as the failure text quotes it: redacted, then trimmed at the end (as upstream's
    ``TrimEnd``) and cut in the middle; redacting first keeps a secret at either end matchable whole."""
    secret_list = list(secrets)
    return redact(truncate_middle(redact(stderr, secret_list).rstrip(), limit), secret_list)


def helm_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The operator's environment without its own settings (``OPERATOR__*`` carries the broker and
    cluster passwords, which helm and its plugins have no business reading), plus ``extra``."""
    inherited = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPERATOR__")}
    return {**inherited, **extra}


def escape_set_value(value: str) -> str:
    r"""``--set`` treats ``\``, ``,`` and ``=`` specially; escape them as upstream does."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
