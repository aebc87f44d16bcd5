"""One operator, both controller generations: the pool lifecycle against the simulator speaking pool-era
or DeploymentSite-era names, with the operator's contract on ``auto`` (contracts/profiles.py)."""

from __future__ import annotations

import pytest

from communication_operator.pools import PoolKey
from communication_operator.pools.naming import pool_resource_name
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import OperatorFactory, Pools

pytestmark = pytest.mark.cluster


async def _state(sim: RunningSimulator, rt_id: str) -> str:
    return str((await sim.admin.pool(rt_id))["communicationState"])


@pytest.mark.parametrize("contract", ["deploymentsites", "pools"])
async def test_edge_pool_lifecycle_in_either_generation(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory, contract: str
) -> None:
    await controller_sim.admin.set_contract(contract)
    rt_id = await controller_sim.admin.create_pool("acme", "edge-site", "Edge")
    await start_operator(central=False)

    await pools.create("edge-site", "acme", rt_id)
    await eventually(lambda: _is(_state(controller_sim, rt_id), "Online"), what="pool Online")
    await pools.delete("edge-site")
    await eventually(lambda: _is(_state(controller_sim, rt_id), "Unregistered"), what="pool Unregistered")

    methods = [(c["method"], c["error"] is None) for c in await controller_sim.admin.calls()]
    if contract == "deploymentsites":
        # Detected once per connection by "Method does not exist", then spoken directly.
        assert methods.count(("RegisterPoolAsync", False)) == 1, methods
        assert methods.count(("UnregisterPoolAsync", True)) == 1, methods  # the simulator logs pool names
    else:
        assert all(ok for _, ok in methods), methods


@pytest.mark.parametrize("contract", ["deploymentsites", "pools"])
async def test_central_pool_lifecycle_in_either_generation(
    controller_sim: RunningSimulator,
    pools: Pools,
    sites: Pools,
    start_operator: OperatorFactory,
    contract: str,
) -> None:
    # Central mode creates the kind of the controller's generation (test_deployment_sites.py).
    resources = sites if contract == "deploymentsites" else pools
    await controller_sim.admin.set_contract(contract)
    await start_operator(central=True)
    rt_id = await controller_sim.admin.create_pool("acme", "cloud", "Cloud")
    name = pool_resource_name(PoolKey("acme", rt_id))

    await controller_sim.admin.deploy_pool(rt_id)  # DeploymentSiteDeployedAsync in the DS generation
    await eventually(lambda: _has(resources.names(), name), what="the pool resource")
    await eventually(lambda: _is(_state(controller_sim, rt_id), "Online"), what="pool Online")
    report = await controller_sim.admin.wait_for_call("ReportDeployedStateAsync")
    field = "deploymentSiteRtId" if contract == "deploymentsites" else "poolRtId"
    assert [p[field] for p in report["arguments"][0]] == [rt_id]

    await controller_sim.admin.undeploy_pool(rt_id)
    await eventually(lambda: _lacks(resources.names(), name), what="the pool resource to be deleted")


async def test_the_operator_follows_a_controller_that_changes_generation_between_connections(
    controller_sim: RunningSimulator, pools: Pools, start_operator: OperatorFactory
) -> None:
    rt_id = await controller_sim.admin.create_pool("acme", "edge-site", "Edge")
    await start_operator(central=False)
    await pools.create("edge-site", "acme", rt_id)
    await eventually(lambda: _is(_state(controller_sim, rt_id), "Online"), what="pool Online")

    await controller_sim.admin.set_contract("deploymentsites")  # upgraded while the operator was away
    await controller_sim.admin.fault("restart")
    after_upgrade = await eventually(
        lambda: _registrations(controller_sim, 3),
        what="detection and registration after the upgrade",
        timeout=30,
    )
    await controller_sim.admin.set_contract("pools")  # and back
    await controller_sim.admin.fault("restart")
    after_downgrade = await eventually(
        lambda: _registrations(controller_sim, 4), what="registration after the downgrade", timeout=30
    )

    # First connection: pool names. After the upgrade: RegisterPoolAsync is refused ("Method does not
    # exist", no side effect) and RegisterDeploymentSiteAsync succeeds (logged under the pool name by
    # the simulator). After the downgrade the next connection starts with pool names again.
    assert after_upgrade[:3] == [True, False, True], after_upgrade
    assert after_downgrade[3] is True
    deploymentsite_calls = [c for c in await controller_sim.admin.calls() if c["error"] is None]
    assert any(c["arguments"] == ["acme", rt_id] for c in deploymentsite_calls)


async def _registrations(sim: RunningSimulator, count: int) -> list[bool] | None:
    calls = [c["error"] is None for c in await sim.admin.calls() if c["method"] == "RegisterPoolAsync"]
    return calls if len(calls) >= count else None


async def _is(value: object, expected: str) -> bool:
    return await value == expected  # type: ignore[misc]


async def _has(names: object, name: str) -> bool:
    return name in await names  # type: ignore[misc]


async def _lacks(names: object, name: str) -> bool:
    return name not in await names  # type: ignore[misc]
