"""Names and labels of a workload's release and Secret.

The rules live in :mod:`communication_operator.names`; re-exported here for the workload modules.
"""

from __future__ import annotations

from communication_operator import names
from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.names import (
    ANNOTATION_WORKLOAD_NAME,
    DNS_NAME_MAX_LENGTH,
    HELM_INSTANCE_LABEL,
    LABEL_MANAGED_BY,
    LABEL_POOL_RT_ID,
    LABEL_TENANT,
    LABEL_VALUE_MAX_LENGTH,
    LABEL_WORKLOAD_RT_ID,
    MANAGED_BY_VALUE,
    RELEASE_SECRET_SUFFIX,
    SECRET_NAME_MAX_LENGTH,
    NamingError,
    dns_name,
    is_dns_label,
    label_value,
    release_name,
    release_secret_name,
)

__all__ = [
    "ANNOTATION_WORKLOAD_NAME",
    "DNS_NAME_MAX_LENGTH",
    "HELM_INSTANCE_LABEL",
    "LABEL_MANAGED_BY",
    "LABEL_POOL_RT_ID",
    "LABEL_TENANT",
    "LABEL_VALUE_MAX_LENGTH",
    "LABEL_WORKLOAD_RT_ID",
    "MANAGED_BY_VALUE",
    "RELEASE_SECRET_SUFFIX",
    "SECRET_NAME_MAX_LENGTH",
    "NamingError",
    "dns_name",
    "is_dns_label",
    "label_value",
    "release_labels",
    "release_name",
    "release_secret_name",
]


def release_labels(dto: WorkloadDeployedDto) -> dict[str, str]:
    """Labels identifying tenant, pool and workload; for helm ``--labels`` and the per-release Secret."""
    return names.release_labels(dto.tenant_id, dto.pool_rt_id, dto.workload_rt_id)
