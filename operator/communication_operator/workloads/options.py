"""How deploys run: :class:`WorkloadOptions` (built from the settings by ``runtime/workloads.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from communication_operator.contracts import WorkloadType
from communication_operator.workloads.signals.policy import FailFastPolicy

STATUS_LIMIT: Final = 4000


@dataclass(frozen=True)
class WorkloadOptions:
    """How deploys run; ``runtime.workloads.workload_options`` reads the ``OPERATOR__HELM__*`` settings."""

    namespace: str = "octo"
    platform_namespace: str = ""  # adapter pools (workloadType 2); empty = ``namespace``
    timeout_seconds: float = 300.0
    history_max: int = 5
    max_concurrent: int = 4
    force_conflicts: bool = False  # helm 4 --force-conflicts on the real upgrade
    fail_fast: FailFastPolicy = field(default_factory=FailFastPolicy)
    dry_run: bool = True
    status_limit: int = STATUS_LIMIT

    def namespace_for(self, workload_type: int) -> str:
        """The namespace a workload's release lives in: adapter pools go to the platform namespace."""
        if workload_type == WorkloadType.ADAPTER_POOL and self.platform_namespace:
            return self.platform_namespace
        return self.namespace
