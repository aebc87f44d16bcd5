"""DeploymentSite resources on the local cluster: the operator serves them like CommunicationPools (edge
mode), and central mode creates the kind that matches the controller it is connected to."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from kubernetes_asyncio import client

from communication_operator.pools import PoolKey
from communication_operator.pools.naming import pool_resource_name
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.waiting import eventually, settled
from tests.integration.pools.conftest import OperatorFactory, Pools

pytestmark = pytest.mark.cluster

KIND_PLURALS = ("communicationpools", "deploymentsites")
#: Seconds to wait for the operator, the API server and the simulator to agree: generous, because a
#: loaded machine (CI, or another test's processes beside this one) slows all three at once.
CLUSTER_WAIT = 45.0


async def _state(sim: RunningSimulator, rt_id: str) -> str:
    return str((await sim.admin.pool(rt_id))["communicationState"])


async def _is(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


async def _gone(resources: Pools, name: str) -> bool:
    return await resources.get(name) is None


@pytest.mark.parametrize("contract", ["deploymentsites", "pools"])
async def test_edge_mode_registers_a_deploymentsite_like_a_communicationpool(
    controller_sim: RunningSimulator,
    pools: Pools,
    sites: Pools,
    start_operator: OperatorFactory,
    contract: str,
) -> None:
    # The wire contract does not depend on the kind: a DeploymentSite registers with either generation.
    await controller_sim.admin.set_contract(contract)
    rt_id = await controller_sim.admin.create_pool("acme", "edge-site", "Edge")
    await start_operator(central=False)

    await sites.create("edge-site", "acme", rt_id)
    await eventually(
        lambda: _is(_state(controller_sim, rt_id), "Online"), timeout=CLUSTER_WAIT, what="site Online"
    )
    status: dict[str, Any] = await eventually(
        lambda: _registered_status(sites, "edge-site"),
        timeout=CLUSTER_WAIT,
        what="status Registered on the DeploymentSite",
    )
    assert status["phase"] == "Registered"
    events = await sites.events("edge-site")
    assert ("Normal", "Registered", "The Communication Controller accepted the pool") in events
    assert await pools.names() == []  # nothing else was made for it

    await sites.delete("edge-site")
    await eventually(
        lambda: _is(_state(controller_sim, rt_id), "Unregistered"),
        timeout=CLUSTER_WAIT,
        what="site Unregistered",
    )
    await eventually(
        lambda: _gone(sites, "edge-site"), timeout=CLUSTER_WAIT, what="the finalizer to be released"
    )


async def _registered_status(resources: Pools, name: str) -> dict[str, Any] | None:
    status = await resources.status(name)
    return status if status.get("communicationStatus") == "Registered" else None


async def test_central_mode_creates_deploymentsites_for_a_deploymentsite_controller(
    controller_sim: RunningSimulator, pools: Pools, sites: Pools, start_operator: OperatorFactory
) -> None:
    await controller_sim.admin.set_contract("deploymentsites")
    await start_operator(central=True)
    rt_id = await controller_sim.admin.create_pool("acme", "cloud", "Cloud")
    name = pool_resource_name(PoolKey("acme", rt_id))

    await controller_sim.admin.deploy_pool(rt_id)  # DeploymentSiteDeployedAsync
    site = await eventually(lambda: sites.get(name), timeout=CLUSTER_WAIT, what="the DeploymentSite")
    assert site["spec"] == {"tenantId": "acme", "deploymentSiteRtId": rt_id}
    labels = site["metadata"]["labels"]
    assert labels["octo-mesh.meshmakers.io/deployment-site-rt-id"] == rt_id
    assert labels["octo-mesh.meshmakers.io/managed-by"] == "communication-operator"
    assert await pools.names() == []
    assert await pools.secret_names() == [f"{name}-octo-mesh-connection"]

    await eventually(
        lambda: _is(_state(controller_sim, rt_id), "Online"), timeout=CLUSTER_WAIT, what="site Online"
    )
    await eventually(
        lambda: _registered_status(sites, name),
        timeout=CLUSTER_WAIT,
        what="status Registered on the DeploymentSite",
    )
    # The reverse sync covers the DeploymentSite's pool like a CommunicationPool's.
    report = await controller_sim.admin.wait_for_call("ReportDeployedStateAsync")
    assert [p["deploymentSiteRtId"] for p in report["arguments"][0]] == [rt_id]

    await controller_sim.admin.undeploy_pool(rt_id)  # DeploymentSiteUndeployedAsync
    await eventually(
        lambda: _gone(sites, name), timeout=CLUSTER_WAIT, what="the DeploymentSite to be deleted"
    )
    await eventually(
        lambda: _is(pools.secret_names(), []), timeout=CLUSTER_WAIT, what="the broker secret to be deleted"
    )
    await eventually(
        lambda: _is(_state(controller_sim, rt_id), "Unregistered"),
        timeout=CLUSTER_WAIT,
        what="site Unregistered",
    )


async def test_central_mode_creates_communicationpools_for_a_pool_controller(
    controller_sim: RunningSimulator, pools: Pools, sites: Pools, start_operator: OperatorFactory
) -> None:
    await controller_sim.admin.set_contract("pools")
    await start_operator(central=True)
    rt_id = await controller_sim.admin.create_pool("acme", "cloud", "Cloud")
    name = pool_resource_name(PoolKey("acme", rt_id))

    await controller_sim.admin.deploy_pool(rt_id)  # PoolDeployedAsync
    pool = await eventually(lambda: pools.get(name), timeout=CLUSTER_WAIT, what="the CommunicationPool")
    assert pool["spec"] == {"tenantId": "acme", "poolRtId": rt_id}
    await eventually(
        lambda: _is(_state(controller_sim, rt_id), "Online"), timeout=CLUSTER_WAIT, what="pool Online"
    )
    assert await sites.names() == []

    await controller_sim.admin.undeploy_pool(rt_id)
    await eventually(
        lambda: _gone(pools, name), timeout=CLUSTER_WAIT, what="the CommunicationPool to be deleted"
    )


async def _requests_by_resource(api: client.ApiClient) -> Counter[str]:
    """Requests the API server has served on pool resources, by ``plural VERB[/subresource] code``."""
    response = await api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=10
    )
    counts: Counter[str] = Counter()
    for line in (await response.read()).decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = {
            key: value.strip('"')
            for key, value in (
                part.split("=", 1)
                for part in line[line.index("{") + 1 : line.rindex("}")].split(",")
                if "=" in part
            )
        }
        if (
            labels.get("resource") not in ("communicationpools", "deploymentsites")
            or labels["verb"] == "WATCH"
        ):
            continue
        subresource = f"/{labels['subresource']}" if labels.get("subresource") else ""
        counts[f"{labels['resource']} {labels['verb']}{subresource} {labels['code']}"] += int(
            float(line.rsplit(" ", 1)[1])
        )
    return counts


async def test_a_burst_for_a_deploymentsite_controller_costs_what_a_pool_burst_costs(
    controller_sim: RunningSimulator,
    sites: Pools,
    start_operator: OperatorFactory,
    kube_api: client.ApiClient,
) -> None:
    """The requests per pool that test_burst_requests.py pins for CommunicationPools, on DeploymentSites."""
    count = 20
    await controller_sim.admin.set_contract("deploymentsites")
    await start_operator(central=True)
    rt_ids = [await controller_sim.admin.create_pool("acme", f"burst-{i}", "Cloud") for i in range(count)]
    # The API server counts every namespace: start once an earlier test's teardown is over.
    before = await settled(lambda: _requests_by_resource(kube_api), what="pool resource request counters")

    await asyncio.gather(*(controller_sim.admin.deploy_pool(rt_id) for rt_id in rt_ids))

    async def all_registered() -> bool:
        listed = [await sites.status(name) for name in await sites.names()]
        return len(listed) == count and all(s.get("communicationStatus") == "Registered" for s in listed)

    await eventually(all_registered, timeout=60, what="every deployed site Registered")
    await asyncio.sleep(1.5)
    spent = await _requests_by_resource(kube_api) - before
    print(f"requests during a burst of {count} DeploymentSite deploys: {dict(sorted(spent.items()))}")
    assert spent["deploymentsites POST 201"] == count, spent
    assert spent["deploymentsites LIST 404"] == 0, spent  # created first, no lookup of the name
    assert spent["deploymentsites PATCH 200"] <= count, spent
    assert spent["deploymentsites PATCH/status 200"] < 2 * count, spent
    # The counters are the API server's, for every namespace: the deletion of earlier tests' namespaces
    # lists and deletes pool resources too, so CommunicationPool requests and listings are not compared.
