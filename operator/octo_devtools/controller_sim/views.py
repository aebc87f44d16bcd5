"""JSON views of the controller state for the admin API, with enum values rendered as their names."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from octo_devtools.controller_sim.state import ControllerState, Pool, Workload

REDACTED = "***"


def enum_name(value: IntEnum) -> str:
    """``CommunicationState.ONLINE`` → ``"Online"``, as the C# enum member is spelled."""
    return "".join(part.title() for part in value.name.split("_"))  # ADAPTER_POOL → "AdapterPool"


def render_pool(pool: Pool) -> dict[str, Any]:
    return {
        "tenantId": pool.tenant_id,
        "poolRtId": pool.pool_rt_id,
        "name": pool.name,
        "environment": enum_name(pool.environment),
        "communicationState": enum_name(pool.communication_state),
        "deploymentState": enum_name(pool.deployment_state),
    }


def render_workload(workload: Workload) -> dict[str, Any]:
    return {
        "tenantId": workload.tenant_id,
        "poolRtId": workload.pool_rt_id,
        "workloadRtId": workload.workload_rt_id,
        "name": workload.name,
        "workloadType": enum_name(workload.workload_type),
        "deploymentState": enum_name(workload.deployment_state),
        "statusMessage": workload.status_message,
        "progress": list(workload.progress),
        "deploys": [record.to_view() for record in workload.deploys.records],
    }


def render_state(state: ControllerState) -> dict[str, Any]:
    return {
        "operators": [
            {"connectionId": c.connection_id, "autoManagePools": c.auto_manage_pools}
            for c in state.connections.values()
            if c.registered_as_operator
        ],
        "connections": [
            {
                "connectionId": c.connection_id,
                "registeredAsOperator": c.registered_as_operator,
                "autoManagePools": c.auto_manage_pools,
                "pools": [{"tenantId": t, "poolRtId": p} for t, p in sorted(c.pools)],
            }
            for c in state.connections.values()
        ],
        "pools": [render_pool(p) for p in state.pools.values()],
        "workloads": [render_workload(w) for w in state.workloads.values()],
        "queuedWorkloadEvents": [
            {"tenantId": t, "poolRtId": p, "target": target, "workloadRtId": workload_rt_id}
            for (t, p), events in state.queued.items()
            for workload_rt_id, (target, _arguments) in events.items()
        ],
        "scaleReports": [
            {"connectionId": r.connection_id, **redact(r.status.to_wire())} for r in state.scale_reports
        ],
    }


def redact(value: Any) -> Any:
    """Replace repository passwords and secret override values anywhere in a JSON value."""
    if isinstance(value, list):
        return [redact(v) for v in value]
    if not isinstance(value, dict):
        return value
    is_secret_override = any(str(k).casefold() == "issecret" and v is True for k, v in value.items())
    result: dict[str, Any] = {}
    for key, item in value.items():
        folded = str(key).casefold()
        if item is not None and (
            folded == "repositorypassword" or (is_secret_override and folded == "value")
        ):
            result[key] = REDACTED
        else:
            result[key] = redact(item)
    return result
