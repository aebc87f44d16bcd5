"""The running operator refuses a workload whose tenant id has no letters or digits: no helm run."""

from __future__ import annotations

from pathlib import Path

import pytest

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


async def test_a_tenant_id_that_sanitises_to_nothing_fails_once_and_installs_nothing(
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
    pool = await controller_sim.admin.create_pool("***", "edge-site", "Edge")
    await start_operator(central=False, helm=HelmSettings(binary=str(kube_cluster.helm), timeoutseconds=30))
    await pools.create("edge-site", "***", pool)
    await eventually(lambda: online(controller_sim, pool), what="pool Online")

    workload = await controller_sim.admin.create_workload(
        "***", pool, "web", repository_url=chart_repo.url, chart_name="web", chart_version="0.1.0"
    )
    await controller_sim.admin.deploy_workload(workload)

    async def failed() -> bool:
        return (await controller_sim.admin.workload(workload))["deploymentState"] == "Error"

    await eventually(failed, timeout=30, what="workload Error")
    item = await controller_sim.admin.workload(workload)
    assert item["statusMessage"] == (
        "Invalid workload: tenantId '***' has no letters or digits; cannot name the helm release"
    )
    statuses = await controller_sim.admin.calls("ReportWorkloadDeploymentStatusAsync")
    assert len(statuses) == 1
    # helm 4 lists releases in any status by default.
    listed = await kube_cluster.helm_async("list", "-n", pools.namespace, "-o", "json")
    assert listed.returncode == 0
    assert listed.stdout.strip() in ("", "[]")
