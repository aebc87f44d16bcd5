"""Step *dry run*: ``helm upgrade --install --dry-run=server``, so that a chart the API server refuses
fails before the per-release Secret changes what the running release reads."""

from __future__ import annotations

from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.steps.helm_upgrade import UpgradeArgs, upgrade_install


async def dry_run(
    helm: HelmPort, options: WorkloadOptions, metrics: OperatorMetrics | None, args: UpgradeArgs
) -> None:
    """Raises :class:`DeployFailed` with helm's (redacted) error; a no-op when dry runs are off."""
    if not options.dry_run:
        return
    try:
        await upgrade_install(helm, options, metrics, args, dry_run=True)
    except HelmError as exc:
        raise DeployFailed(str(exc)) from None
