"""Step *watched upgrade*: ``helm upgrade --install --wait`` while :class:`~..watcher.ReleaseWatcher`
reports live signals, stopping helm early when it calls one fatal (fail-fast, octo-spec §4.6)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final

from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.diagnostics import fail_fast_head, with_diagnostics
from communication_operator.workloads.errors import DeployFailed, StoppedEarly
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.replicas import explain_field_conflict
from communication_operator.workloads.scheduler import settle
from communication_operator.workloads.signals.text import describe
from communication_operator.workloads.steps.helm_upgrade import UpgradeArgs, upgrade_install
from communication_operator.workloads.watcher import DeployWatcher

log = logging.getLogger(__name__)

STOPPING_EARLY_LOG: Final = "release %s: stopping helm early (fail-fast): %s"
FATAL_SIGNALS_EXPLAINED: Final = 3  # fatal signals named in the status text


async def watched_upgrade(
    helm: HelmPort,
    options: WorkloadOptions,
    metrics: OperatorMetrics | None,
    watcher: DeployWatcher,
    args: UpgradeArgs,
    context: Mapping[str, str],
) -> None:
    """The real upgrade, with live progress from ``watcher`` (stopped before this returns).

    Raises :class:`DeployFailed` when helm fails, :class:`StoppedEarly` when the watcher called a
    signal fatal; both messages end with the pod diagnostics.
    """
    try:
        await watcher.start()
    except BaseException:
        # Cancelled (or failed) while the initial lists were still coming: its watches already run.
        await watcher.stop()
        raise
    upgrade = upgrade_install(helm, options, metrics, args, dry_run=False)
    helm_task = asyncio.create_task(upgrade, name=f"helm-{args.release}")
    fatal_task = asyncio.create_task(watcher.fatal.wait(), name=f"fatal-{args.release}")
    try:
        done, _ = await asyncio.wait({helm_task, fatal_task}, return_when=asyncio.FIRST_COMPLETED)
        if helm_task in done:
            try:
                helm_task.result()
            except HelmError as exc:
                message = explain_field_conflict(str(exc))
                raise DeployFailed(_with_diagnostics(message, watcher.snapshot(), options, args)) from None
            return
        # Explain with what is wrong now, before helm's rollback deletes the failing pods.
        fatal = watcher.fatal_signals()[:FATAL_SIGNALS_EXPLAINED]
        causes = [describe(signal, limit=400, secrets=args.secrets) for signal in fatal]
        head = fail_fast_head(args.release, causes, options.timeout_seconds)
        message = _with_diagnostics(head, watcher.snapshot(), options, args)
        log.warning(
            STOPPING_EARLY_LOG,
            args.release,
            "; ".join(describe(signal, limit=200, secrets=args.secrets) for signal in fatal)
            or "fatal signal",
            extra=context,
        )
        await watcher.stop()
        helm_task.cancel()
        await settle(helm_task, expected=(HelmError,))
        raise StoppedEarly(message)
    finally:
        fatal_task.cancel()
        if not helm_task.done():
            helm_task.cancel()
        try:
            await settle(helm_task, expected=(HelmError,))
        finally:
            # Even when cancelled again while helm stops: a watcher left running would keep sending
            # progress for this workload after its (or its successor's) final status.
            await watcher.stop()


def _with_diagnostics(head: str, snapshot: str, options: WorkloadOptions, args: UpgradeArgs) -> str:
    return with_diagnostics(head, snapshot, limit=options.status_limit, secrets=args.secrets)
