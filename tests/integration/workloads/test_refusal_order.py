"""The running operator: a refused push for a workload whose deploy is in flight (review finding 8).

The refusal is the controller's newest word on the workload: the running helm is stopped, and the
controller records exactly one final status (the refusal) and no progress report after it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from communication_operator.contracts import ServerMethod
from communication_operator.settings import HelmSettings
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import ChartRepo, KubeCluster
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import (  # noqa: F401 - fixtures used by name
    OperatorFactory,
    Pools,
    pools,
    start_operator,
)
from tests.integration.pools.test_central_mode import online

pytestmark = pytest.mark.cluster

TENANT = "acme"
STATUS = str(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS)
PROGRESS = str(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS)


async def reports_of(sim: RunningSimulator, workload: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (call["method"], call["arguments"][0])
        for call in await sim.admin.calls()
        if call["method"] in (STATUS, PROGRESS) and call["arguments"][0].get("workloadRtId") == workload
    ]


async def test_a_refusal_stops_the_deploy_in_flight_and_is_the_only_final_status(
    kube_cluster: KubeCluster,
    controller_sim: RunningSimulator,
    pools: Pools,  # noqa: F811
    start_operator: OperatorFactory,  # noqa: F811
    chart_repo: ChartRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CACHE", "CONFIG", "DATA"):
        monkeypatch.setenv(f"HELM_{name}_HOME", str(tmp_path / name.lower()))
    pool = await controller_sim.admin.create_pool(TENANT, "edge-site", "Edge")
    await start_operator(central=False, helm=HelmSettings(binary=str(kube_cluster.helm), timeoutseconds=60))
    await pools.create("edge-site", TENANT, pool)
    await eventually(lambda: online(controller_sim, pool), what="pool Online")
    workload = await controller_sim.admin.create_workload(
        TENANT, pool, "web", repository_url=chart_repo.url, chart_name="web", chart_version="0.1.0"
    )
    await controller_sim.admin.deploy_workload(workload)

    async def upgrading() -> bool:  # no kubelet runs its pods: helm --wait stays in flight
        listed = await kube_cluster.helm_async("list", "-n", pools.namespace, "-q")
        return listed.returncode == 0 and bool(listed.stdout.strip())

    await eventually(upgrading, timeout=60, what="helm upgrade in flight")
    refused = {
        "tenantId": TENANT,
        "poolRtId": pool,
        "workloadName": "web",
        "workloadRtId": workload,
        "workloadType": 7,
        "repositoryUrl": chart_repo.url,
        "chartName": "web",
    }
    await controller_sim.admin.push("WorkloadDeployedAsync", [refused])

    async def answered() -> list[tuple[str, dict[str, Any]]] | None:
        found = await reports_of(controller_sim, workload)
        return found if any(method == STATUS for method, _ in found) else None

    await eventually(answered, timeout=60, what="the refusal's status")

    async def helm_stopped() -> bool:  # SIGTERMed, helm marks the release failed (and rolls it back)
        listed = await kube_cluster.helm_async("list", "-n", pools.namespace, "--pending", "-q")
        return listed.returncode == 0 and not listed.stdout.strip()

    await eventually(
        helm_stopped, timeout=20, what="the deploy's helm stopped (the release no longer pending)"
    )
    await asyncio.sleep(3.0)  # what the stopped deploy might still send
    reports = await reports_of(controller_sim, workload)
    finals = [body for method, body in reports if method == STATUS]
    assert len(finals) == 1, finals
    assert finals[0]["success"] is False
    assert "workloadType" in finals[0]["statusMessage"], finals[0]
    assert reports[-1][0] == STATUS, "a progress report after the final status"
