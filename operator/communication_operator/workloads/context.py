"""Log context of a workload push: ``extra=`` for every log line about it."""

from __future__ import annotations

from communication_operator.contracts import WorkloadDeployedDto, WorkloadUndeployedDto
from communication_operator.logs import log_context
from communication_operator.workloads.naming import NamingError, release_name


def workload_context(
    dto: WorkloadDeployedDto | WorkloadUndeployedDto, release: str | None = None
) -> dict[str, str]:
    """``extra=`` for a log line about a workload: tenant, pool, workload and (when known) release."""
    return log_context(
        tenant=dto.tenant_id, pool=dto.pool_rt_id, workload=dto.workload_rt_id, release=release
    )


def release_or_none(dto: WorkloadDeployedDto) -> str | None:
    try:
        return release_name(dto.tenant_id, dto.workload_rt_id)
    except NamingError:
        return None
