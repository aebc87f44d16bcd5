"""Edge mode on the local API server with the controller simulator: CRs are created by hand."""

from __future__ import annotations

import pytest

from communication_operator.pools import FINALIZER
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import OperatorFactory, Pools

pytestmark = pytest.mark.cluster


async def pool_state(sim: RunningSimulator, pool_rt_id: str) -> str:
    return str((await sim.admin.pool(pool_rt_id))["communicationState"])


async def test_created_pool_goes_online_and_ready_and_delete_unregisters(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    rt_id = await controller_sim.admin.create_pool("acme", "edge-site", "Edge")
    await start_operator(central=False)

    await pools.create("edge-site", "acme", rt_id)

    await eventually(
        lambda: _is(pool_state(controller_sim, rt_id), "Online"), what="pool Online in the controller"
    )
    ready = await eventually(lambda: _condition_true(pools, "edge-site", "Ready"), what="CR Ready")
    assert ready["reason"] == "Registered"
    status = await pools.status("edge-site")
    assert status["communicationStatus"] == "Registered"
    assert status["phase"] == "Registered"
    assert status["observedGeneration"] == 1
    assert status["lastRegistrationTime"]
    body = await pools.get("edge-site")
    assert body is not None
    assert FINALIZER in body["metadata"]["finalizers"]
    assert ("Normal", "Registered") in [(t, r) for t, r, _ in await pools.events("edge-site")]
    register_calls = await controller_sim.admin.calls("RegisterOperatorAsync")
    assert [c["arguments"] for c in register_calls] == [[False]]

    await pools.delete("edge-site")

    await eventually(
        lambda: _is(pool_state(controller_sim, rt_id), "Unregistered"),
        what="pool Unregistered in the controller",
    )
    await eventually(lambda: _gone(pools, "edge-site"), what="the CR to be released by the finalizer")


async def test_cloud_pool_in_edge_mode_shows_the_refusal_without_a_crash_loop(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    rt_id = await controller_sim.admin.create_pool("acme", "cloud-pool", "Cloud")
    operator = await start_operator(central=False, pool_registration_retry_seconds=0.3)

    await pools.create("cloud-pool", "acme", rt_id)

    refused = await eventually(
        lambda: _condition(pools, "cloud-pool", "Registered", "False"), what="Registered=False on the CR"
    )
    assert refused["reason"] == "RegistrationRefused"
    assert "does not match" in refused["message"]
    status = await pools.status("cloud-pool")
    assert status["communicationStatus"].startswith("Failed: ")
    assert "does not match" in status["communicationStatus"]
    assert status["phase"] == "Failed"

    # The retry loop keeps asking (the controller may change its mind), quietly: one event, one status.
    await controller_sim.admin.wait_for_call("RegisterPoolAsync", count=4, timeout=10)
    warnings = [e for e in await pools.events("cloud-pool") if e[1] == "RegistrationRefused"]
    assert len(warnings) == 1
    assert "does not match" in warnings[0][2]
    assert operator.running
    state = await controller_sim.admin.state()
    assert len(state["operators"]) == 1  # still the one connection: no reconnect storm
    assert await pool_state(controller_sim, rt_id) != "Online"


async def _is(value: object, expected: str) -> bool:
    return bool(await value == expected)  # type: ignore[misc]


async def _condition_true(pools: Pools, name: str, kind: str) -> dict[str, object]:
    return await _condition(pools, name, kind, "True")


async def _condition(pools: Pools, name: str, kind: str, status: str) -> dict[str, object]:
    condition = await pools.condition(name, kind)
    return condition if condition.get("status") == status else {}


async def _gone(pools: Pools, name: str) -> bool:
    return await pools.get(name) is None
