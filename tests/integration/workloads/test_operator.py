"""The running operator (app wiring, kopf, hub, pools) deploys and undeploys a workload in edge mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from communication_operator.settings import HelmSettings
from communication_operator.workloads.naming import release_name
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.cluster import ChartRepo, KubeCluster
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import (  # noqa: F401 - fixtures used by name
    OperatorFactory,
    Pools,
    pools,
    start_operator,
)

pytestmark = pytest.mark.cluster


async def test_operator_deploys_and_undeploys_a_workload_of_its_pool(
    kube_cluster: KubeCluster,
    controller_sim: RunningSimulator,
    pools: Pools,  # noqa: F811
    start_operator: OperatorFactory,  # noqa: F811
    fake_kubelet: FakeKubelet,
    chart_repo: ChartRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CACHE", "CONFIG", "DATA"):  # keep helm's repository files out of the home directory
        monkeypatch.setenv(f"HELM_{name}_HOME", str(tmp_path / name.lower()))
    pool = await controller_sim.admin.create_pool("acme", "edge-site", "Edge")
    await start_operator(central=False, helm=HelmSettings(binary=str(kube_cluster.helm), timeoutseconds=30))
    await pools.create("edge-site", "acme", pool)
    await eventually(
        lambda: _state(controller_sim, "pool", pool, "communicationState", "Online"), what="pool Online"
    )

    workload = await controller_sim.admin.create_workload(
        "acme", pool, "web", repository_url=chart_repo.url, chart_name="web", chart_version="0.1.0"
    )
    await controller_sim.admin.deploy_workload(workload)

    await eventually(
        lambda: _state(controller_sim, "workload", workload, "deploymentState", "Deployed"),
        timeout=60,
        what="workload Deployed",
    )
    assert (await controller_sim.admin.workload(workload))[
        "statusMessage"
    ] == "Deployed revision 1 of web 0.1.0"
    release = release_name("acme", workload)
    listed = await kube_cluster.helm_async("list", "-n", pools.namespace, "-o", "json")
    assert release in listed.stdout

    await controller_sim.admin.undeploy_workload(workload)

    async def uninstalled() -> bool:
        result = await kube_cluster.helm_async("list", "-n", pools.namespace, "-o", "json")
        return result.returncode == 0 and release not in result.stdout

    await eventually(uninstalled, timeout=60, what="release uninstalled")


async def _state(sim: RunningSimulator, kind: str, rt_id: str, field: str, expected: str) -> bool:
    item = await (sim.admin.pool(rt_id) if kind == "pool" else sim.admin.workload(rt_id))
    return bool(item[field] == expected)
