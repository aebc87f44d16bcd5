"""Self-healing: controller restarts, operator restarts, tenant updates and garbage pushes."""

from __future__ import annotations

import logging

import pytest

from communication_operator.pools import PoolKey
from communication_operator.pools.naming import pool_resource_name
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import OperatorFactory, Pools

pytestmark = pytest.mark.cluster


async def states(sim: RunningSimulator) -> dict[str, str]:
    return {p["poolRtId"]: p["communicationState"] for p in (await sim.admin.state())["pools"]}


async def all_in(sim: RunningSimulator, state: str, *rt_ids: str) -> bool:
    current = await states(sim)
    return all(current.get(rt_id) == state for rt_id in rt_ids)


async def test_controller_restart_reregisters_every_pool_and_reports_again_without_deleting(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    rt_ids = [await controller_sim.admin.create_pool("acme", f"cloud-{i}", "Cloud") for i in range(3)]
    for rt_id in rt_ids:
        await controller_sim.admin.deploy_pool(rt_id)
    manual = await controller_sim.admin.create_pool("globex", "manual", "Cloud")  # owned but not deployed
    await start_operator(central=True)
    await pools.create("manual", "globex", manual)
    await eventually(lambda: all_in(controller_sim, "Online", *rt_ids, manual), what="all pools Online")
    names_before = await pools.names()
    calls_before = len(await controller_sim.admin.calls())
    # How many reports came before depends on how the registrations at start were batched.
    reports_before = len(await controller_sim.admin.calls("ReportDeployedStateAsync"))

    await controller_sim.admin.fault("restart")  # every connection gone, in-memory tracking lost

    # The controller keeps the pools' states across its restart; what it lost is who serves them.
    everything = sorted([*rt_ids, manual])
    await eventually(
        lambda: claimed_by_one_operator(controller_sim, everything), what="all pools claimed again"
    )
    await controller_sim.admin.wait_for_call("ReportDeployedStateAsync", count=reports_before + 1, timeout=10)
    calls_after = (await controller_sim.admin.calls())[calls_before:]
    methods = [c["method"] for c in calls_after]
    assert methods[0] == "RegisterOperatorAsync"
    assert calls_after[0]["arguments"] == [True]
    assert (
        sorted(c["arguments"][1] for c in calls_after if c["method"] == "RegisterPoolAsync") == everything
    ), [(c["method"], str(c["arguments"])[-30:]) for c in calls_after]
    reports = [c for c in calls_after if c["method"] == "ReportDeployedStateAsync"]
    assert sorted(p["poolRtId"] for p in reports[0]["arguments"][0]) == everything
    last_registration = max(i for i, m in enumerate(methods) if m == "RegisterPoolAsync")
    assert methods.index("ReportDeployedStateAsync") > last_registration
    assert await all_in(controller_sim, "Online", *everything)
    assert await pools.names() == names_before  # nothing deleted


async def claimed_by_one_operator(sim: RunningSimulator, rt_ids: list[str]) -> bool:
    state = await sim.admin.state()
    operators = [c for c in state["connections"] if c["registeredAsOperator"]]
    return len(operators) == 1 and sorted(p["poolRtId"] for p in operators[0]["pools"]) == rt_ids


async def test_operator_restart_reregisters_and_unregisters_pools_deleted_while_it_was_down(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    kept = await controller_sim.admin.create_pool("acme", "kept", "Edge")
    removed = await controller_sim.admin.create_pool("acme", "removed", "Edge")
    first = await start_operator(central=False)
    await pools.create("kept", "acme", kept)
    await pools.create("removed", "acme", removed)
    await eventually(lambda: all_in(controller_sim, "Online", kept, removed), what="both pools Online")

    await first.stop()
    await eventually(lambda: all_in(controller_sim, "Offline", kept, removed), what="both pools Offline")
    await pools.delete("removed")  # the finalizer keeps it until an operator unregisters the pool
    body = await pools.get("removed")
    assert body is not None
    assert body["metadata"].get("deletionTimestamp")
    assert await all_in(controller_sim, "Offline", removed)

    await start_operator(central=False)

    await eventually(lambda: all_in(controller_sim, "Online", kept), what="the kept pool Online again")
    await eventually(
        lambda: all_in(controller_sim, "Unregistered", removed), what="the removed pool Unregistered"
    )
    await eventually(lambda: _gone(pools, "removed"), what="the deleted CR to be released")
    assert await pools.names() == ["kept"]


async def test_pre_update_tenant_cycles_only_that_tenants_pools(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    acme = await controller_sim.admin.create_pool("acme", "a", "Edge")
    globex = await controller_sim.admin.create_pool("globex", "g", "Edge")
    await start_operator(central=False, pre_update_tenant_delay_seconds=0.5)
    await pools.create("a", "acme", acme)
    await pools.create("g", "globex", globex)
    await eventually(lambda: all_in(controller_sim, "Online", acme, globex), what="both pools Online")
    before = len(await controller_sim.admin.calls())

    await controller_sim.admin.pre_update("acme")

    await eventually(
        lambda: all_in(controller_sim, "Unregistered", acme), timeout=5, interval=0.02, what="unregistered"
    )
    await eventually(
        lambda: all_in(controller_sim, "Online", acme), what="acme re-registered after the pause"
    )
    calls = [(c["method"], c["arguments"]) for c in (await controller_sim.admin.calls())[before:]]
    assert calls == [("UnregisterPoolAsync", ["acme", acme]), ("RegisterPoolAsync", ["acme", acme])]
    assert await all_in(controller_sim, "Online", globex)


async def test_malformed_pushes_are_logged_and_ignored(
    controller_sim: RunningSimulator,
    pools: Pools,
    start_operator: OperatorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="communication_operator")
    operator = await start_operator(central=True)
    [connection] = await eventually(
        lambda: operator_connections(controller_sim), what="the operator connected"
    )

    await controller_sim.admin.push("PoolDeployedAsync", [{"tenantId": 42, "poolRtId": ["x"]}])  # wrong types
    await controller_sim.admin.push("PoolDeployedAsync", [])  # missing argument
    await controller_sim.admin.push("PoolUndeployedAsync", ["acme"])  # missing argument
    await controller_sim.admin.push("PreUpdateTenantAsync", [{"tenant": "acme"}])  # object instead of string
    await controller_sim.admin.push("NoSuchCallbackAsync", [1, 2, 3])  # unknown target
    await controller_sim.admin.push(
        "PoolDeployedAsync", [{"tenantId": "acme", "poolRtId": "not-an-object-id"}]
    )

    # Still connected on the same connection, and still working: a real deploy afterwards goes through.
    rt_id = await controller_sim.admin.create_pool("acme", "after", "Cloud")
    await controller_sim.admin.deploy_pool(rt_id)
    name = pool_resource_name(PoolKey("acme", rt_id))
    await eventually(
        lambda: all_in(controller_sim, "Online", rt_id), what="the pool deployed after the garbage"
    )
    assert await pools.names() == [name]
    assert await operator_connections(controller_sim) == [connection]
    assert operator.running
    text = caplog.text
    assert "ignoring malformed push" in text
    assert "NoSuchCallbackAsync" in text
    assert "not provisioning pool acme/not-an-object-id" in text


async def operator_connections(sim: RunningSimulator) -> list[str]:
    return [o["connectionId"] for o in (await sim.admin.state())["operators"]]


async def _gone(pools: Pools, name: str) -> bool:
    return await pools.get(name) is None
