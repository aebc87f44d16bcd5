"""Central mode: the controller's pool deploy/undeploy become CommunicationPools and broker secrets."""

from __future__ import annotations

import base64

import pytest
from kubernetes_asyncio import client

from communication_operator.pools import PoolKey
from communication_operator.pools.naming import broker_secret_name, pool_resource_name
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import OperatorFactory, Pools

pytestmark = pytest.mark.cluster


async def online(sim: RunningSimulator, *rt_ids: str) -> bool:
    state = await sim.admin.state()
    by_id = {p["poolRtId"]: p["communicationState"] for p in state["pools"]}
    return all(by_id.get(rt_id) == "Online" for rt_id in rt_ids)


async def test_deploy_creates_secret_and_pool_and_undeploy_removes_both(
    controller_sim: RunningSimulator,
    pools: Pools,
    start_operator: OperatorFactory,
    kube_api: client.ApiClient,
) -> None:
    await start_operator(central=True)
    rt_id = await controller_sim.admin.create_pool("acme", "cloud", "Cloud")
    name = pool_resource_name(PoolKey("acme", rt_id))
    secret = broker_secret_name(name)

    await controller_sim.admin.deploy_pool(rt_id)

    await eventually(lambda: _has(pools.names(), name), what="the CommunicationPool")
    await eventually(lambda: _has(pools.secret_names(), secret), what="the broker secret")
    body = await pools.get(name)
    assert body is not None
    assert body["spec"] == {"tenantId": "acme", "poolRtId": rt_id}
    assert body["metadata"]["labels"] == {
        "octo-mesh.meshmakers.io/tenant": "acme",
        "octo-mesh.meshmakers.io/pool-rt-id": rt_id,
        "octo-mesh.meshmakers.io/managed-by": "communication-operator",
    }
    stored = await client.CoreV1Api(kube_api).read_namespaced_secret(secret, pools.namespace)
    assert base64.b64decode(stored.data["brokerusername"]).decode() == "octo-broker"
    assert base64.b64decode(stored.data["brokerpassword"]).decode() == "broker-password"
    await eventually(lambda: online(controller_sim, rt_id), what="the pool Online")
    # The single-pool reverse sync after the CR's registration.
    report = await controller_sim.admin.wait_for_call("ReportDeployedStateAsync")
    assert [p["poolRtId"] for p in report["arguments"][0]] == [rt_id]

    await controller_sim.admin.undeploy_pool(rt_id)

    await eventually(lambda: _lacks(pools.names(), name), what="the CommunicationPool to be deleted")
    await eventually(lambda: _lacks(pools.secret_names(), secret), what="the broker secret to be deleted")
    pool = await controller_sim.admin.pool(rt_id)
    assert pool["communicationState"] == "Unregistered"


async def test_pools_deployed_while_the_operator_was_down_are_created_at_connect(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    first = await controller_sim.admin.create_pool("acme", "one", "Cloud")
    second = await controller_sim.admin.create_pool("globex", "two", "Cloud")
    await controller_sim.admin.deploy_pool(first)
    await controller_sim.admin.deploy_pool(second)

    await start_operator(central=True)

    expected = sorted(pool_resource_name(PoolKey(t, r)) for t, r in (("acme", first), ("globex", second)))
    await eventually(lambda: _equals(pools.names(), expected), what="both CommunicationPools")
    await eventually(
        lambda: _equals(pools.secret_names(), sorted(broker_secret_name(n) for n in expected)),
        what="both secrets",
    )
    await eventually(lambda: online(controller_sim, first, second), what="both pools Online")
    [register_operator] = await controller_sim.admin.calls("RegisterOperatorAsync")
    assert register_operator["arguments"] == [True]


async def test_edge_mode_ignores_pool_deploys(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    await start_operator(central=False)
    rt_id = await controller_sim.admin.create_pool("acme", "cloud", "Cloud")
    await controller_sim.admin.deploy_pool(rt_id)
    marker = await controller_sim.admin.create_pool("acme", "edge", "Edge")
    await pools.create("edge", "acme", marker)  # something the operator certainly handles after the push
    await eventually(lambda: online(controller_sim, marker), what="the edge pool Online")
    assert await pools.names() == ["edge"]
    assert await pools.secret_names() == []


async def _has(names: object, name: str) -> bool:
    return name in await names  # type: ignore[operator,misc]


async def _lacks(names: object, name: str) -> bool:
    return name not in await names  # type: ignore[operator,misc]


async def _equals(names: object, expected: list[str]) -> bool:
    return bool(await names == expected)  # type: ignore[misc]
