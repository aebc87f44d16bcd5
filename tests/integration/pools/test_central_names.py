"""Central mode on the local cluster: long tenant ids, objects that are not ours, the startup warning."""

from __future__ import annotations

import base64
import logging

import pytest
from kubernetes_asyncio import client

from communication_operator.hub.auth import ANONYMOUS_STARTUP_WARNING
from communication_operator.names import dns_name
from communication_operator.pools import PoolKey
from communication_operator.pools.naming import broker_secret_name, pool_resource_name
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import OperatorFactory, Pools
from tests.integration.pools.test_central_mode import online

pytestmark = pytest.mark.cluster

LONG_TENANT = "a-very-long-tenant-identifier-for-a-big-customer"


async def test_two_pools_of_a_long_tenant_both_get_a_communication_pool_and_register(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    await start_operator(central=True)
    first = await controller_sim.admin.create_pool(LONG_TENANT, "one", "Cloud")
    second = await controller_sim.admin.create_pool(
        LONG_TENANT, "two", "Cloud", pool_rt_id=first[:-1] + ("0" if first[-1] != "0" else "1")
    )
    assert dns_name(LONG_TENANT, first) == dns_name(LONG_TENANT, second)  # upstream's names collide

    await controller_sim.admin.deploy_pool(first)
    await controller_sim.admin.deploy_pool(second)

    await eventually(lambda: online(controller_sim, first, second), timeout=30, what="both pools Online")
    expected = sorted(pool_resource_name(PoolKey(LONG_TENANT, r)) for r in (first, second))
    assert await pools.names() == expected
    assert await pools.secret_names() == sorted(broker_secret_name(n) for n in expected)


async def test_a_secret_we_did_not_create_is_neither_overwritten_nor_deleted(
    controller_sim: RunningSimulator,
    pools: Pools,
    start_operator: OperatorFactory,
    kube_api: client.ApiClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt_id = await controller_sim.admin.create_pool("acme", "cloud", "Cloud")
    name = pool_resource_name(PoolKey("acme", rt_id))
    secret_name = broker_secret_name(name)
    core = client.CoreV1Api(kube_api)
    theirs = client.V1Secret(
        metadata=client.V1ObjectMeta(name=secret_name, labels={"team": "platform"}),
        string_data={"brokerusername": "their-user", "brokerpassword": "their-password"},
    )
    await core.create_namespaced_secret(pools.namespace, theirs)
    await start_operator(central=True)

    await controller_sim.admin.deploy_pool(rt_id)
    await eventually(lambda: online(controller_sim, rt_id), what="the pool Online")
    stored = await core.read_namespaced_secret(secret_name, pools.namespace)
    assert base64.b64decode(stored.data["brokerpassword"]).decode() == "their-password"

    with caplog.at_level(logging.WARNING):
        await controller_sim.admin.undeploy_pool(rt_id)

        async def pool_gone() -> bool:
            return name not in await pools.names()

        await eventually(pool_gone, what="our CommunicationPool deleted")

        async def left_alone_logged() -> bool:
            return any("no managed-by label" in r.getMessage() for r in caplog.records)

        await eventually(left_alone_logged, what="the log line about the Secret left alone")
    kept = await core.read_namespaced_secret(secret_name, pools.namespace)
    assert kept.metadata.uid == stored.metadata.uid
    assert base64.b64decode(kept.data["brokerpassword"]).decode() == "their-password"
    assert "their-password" not in caplog.text


async def test_one_startup_warning_when_the_operator_connects_without_a_token(
    controller_sim: RunningSimulator,
    pools: Pools,
    start_operator: OperatorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        await start_operator(central=False)
        rt_id = await controller_sim.admin.create_pool("acme", "edge", "Edge")
        await pools.create("edge", "acme", rt_id)
        await eventually(lambda: online(controller_sim, rt_id), what="the pool Online")
    assert [r.getMessage() for r in caplog.records].count(ANONYMOUS_STARTUP_WARNING) == 1
