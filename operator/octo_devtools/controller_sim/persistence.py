"""Optional state file: pools and workloads survive a simulator process restart, as they survive a
controller restart in its database. The per-deploy record of dispatches and reports is saved too, so a
test can count final statuses across a controller kill. Connections, declared modes and queued events
are never saved.

The file holds repository passwords and secret values in clear text (like the controller's database
holds them, decrypted here for simplicity), so it is written with mode 0600.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from communication_operator.contracts import (
    CommunicationState,
    DeploymentState,
    PoolEnvironment,
    ValueOverrideDto,
    WorkloadType,
)
from octo_devtools.controller_sim.deploys import DeployLog, DeployRecord
from octo_devtools.controller_sim.state import ControllerState, Pool, Workload

_FORMAT_VERSION = 1


def render(state: ControllerState) -> str:
    """The saved form of ``state`` (compare two renderings to know whether anything changed)."""
    document = {
        "version": _FORMAT_VERSION,
        "pools": [_pool_to_json(p) for p in state.pools.values()],
        "workloads": [_workload_to_json(w) for w in state.workloads.values()],
    }
    return json.dumps(document, indent=1)


def save(state: ControllerState, path: Path, text: str | None = None) -> None:
    """Write ``state`` (or its ``text`` from :func:`render`) to ``path`` atomically."""
    text = render(state) if text is None else text
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temp_name, path)  # atomic: a kill -9 never leaves half a file
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def load(path: Path) -> ControllerState:
    state = ControllerState()
    if not path.exists():
        return state
    document = json.loads(path.read_text())
    if document.get("version") != _FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported state file version {document.get('version')!r}")
    for raw in document["pools"]:
        pool = Pool(
            tenant_id=raw["tenantId"],
            pool_rt_id=raw["poolRtId"],
            name=raw["name"],
            environment=PoolEnvironment(raw["environment"]),
            communication_state=CommunicationState(raw["communicationState"]),
            deployment_state=DeploymentState(raw["deploymentState"]),
        )
        state.pools[pool.pool_rt_id] = pool
    for raw in document["workloads"]:
        workload = Workload(
            tenant_id=raw["tenantId"],
            pool_rt_id=raw["poolRtId"],
            workload_rt_id=raw["workloadRtId"],
            name=raw["name"],
            workload_type=WorkloadType(raw["workloadType"]),
            repository_url=raw["repositoryUrl"],
            chart_name=raw["chartName"],
            chart_version=raw["chartVersion"],
            repository_username=raw["repositoryUsername"],
            repository_password=raw["repositoryPassword"],
            values_yaml=raw["valuesYaml"],
            values=[ValueOverrideDto.model_validate(v) for v in raw["values"]],
            receives_cluster_secrets=raw["receivesClusterSecrets"],
            ingress_enabled=raw["ingressEnabled"],
            hostname=raw["hostname"],
            hibernated=bool(raw.get("hibernated", False)),
            deployment_state=DeploymentState(raw["deploymentState"]),
            status_message=raw["statusMessage"],
            progress=list(raw["progress"]),
            deploys=DeployLog([DeployRecord.from_json(r) for r in raw.get("deploys", [])]),
        )
        state.workloads[workload.workload_rt_id] = workload
    return state


def _pool_to_json(pool: Pool) -> dict[str, Any]:
    return {
        "tenantId": pool.tenant_id,
        "poolRtId": pool.pool_rt_id,
        "name": pool.name,
        "environment": int(pool.environment),
        "communicationState": int(pool.communication_state),
        "deploymentState": int(pool.deployment_state),
    }


def _workload_to_json(workload: Workload) -> dict[str, Any]:
    return {
        "tenantId": workload.tenant_id,
        "poolRtId": workload.pool_rt_id,
        "workloadRtId": workload.workload_rt_id,
        "name": workload.name,
        "workloadType": int(workload.workload_type),
        "repositoryUrl": workload.repository_url,
        "chartName": workload.chart_name,
        "chartVersion": workload.chart_version,
        "repositoryUsername": workload.repository_username,
        "repositoryPassword": workload.repository_password,
        "valuesYaml": workload.values_yaml,
        "values": [v.to_wire() for v in workload.values],
        "receivesClusterSecrets": workload.receives_cluster_secrets,
        "ingressEnabled": workload.ingress_enabled,
        "hostname": workload.hostname,
        "hibernated": workload.hibernated,
        "deploymentState": int(workload.deployment_state),
        "statusMessage": workload.status_message,
        "progress": workload.progress,
        "deploys": [record.to_json() for record in workload.deploys.records],
    }
