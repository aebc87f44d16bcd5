"""``helm upgrade --install`` as the dry run and the watched upgrade both run it, timed in the metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from communication_operator.metrics import HelmResult, OperatorMetrics
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.ports import HelmPort


@dataclass(frozen=True)
class UpgradeArgs:
    """What one deploy passes to ``helm upgrade --install`` (octo-spec §4.3)."""

    release: str
    chart_ref: str
    namespace: str
    values_files: Sequence[Path]
    chart_version: str | None
    labels: dict[str, str]
    secrets: frozenset[str]
    set_values: dict[str, str] = field(default_factory=dict)  # the replica pin (steps/replica_pin.py)


async def upgrade_install(
    helm: HelmPort,
    options: WorkloadOptions,
    metrics: OperatorMetrics | None,
    args: UpgradeArgs,
    *,
    dry_run: bool,
) -> None:
    """Run it once; raises :class:`HelmError`."""
    with timed_helm_run(metrics, "dry-run" if dry_run else "upgrade"):
        await helm.upgrade_install(
            args.release,
            args.chart_ref,
            namespace=args.namespace,
            values_files=args.values_files,
            chart_version=args.chart_version,
            timeout_seconds=options.timeout_seconds,
            history_max=options.history_max,
            labels=args.labels,
            dry_run=dry_run,
            set_values=args.set_values,
            force_conflicts=options.force_conflicts and not dry_run,
            secrets=args.secrets,
        )


@contextlib.contextmanager
def timed_helm_run(metrics: OperatorMetrics | None, operation: str) -> Iterator[None]:
    """Record a helm run in the metrics as success, cancelled, timeout or failure."""
    if metrics is None:
        yield
        return
    with metrics.time_helm_run(operation) as run:
        try:
            yield
        except asyncio.CancelledError:
            run.result = HelmResult.CANCELLED
            raise
        except HelmError as exc:
            run.result = HelmResult.TIMEOUT if exc.timed_out else HelmResult.FAILURE
            raise
