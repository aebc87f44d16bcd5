"""A workload deploy and a scale against a DeploymentSite-era controller (the simulator with
``contract=deploymentsites``), the hub client on ``auto`` (see conftest.py for the setup)."""

from __future__ import annotations

import pytest

from communication_operator.contracts.profiles import Contract
from octo_devtools.controller_sim import RunningSimulator

from .conftest import DeployerFactory

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("contract", ["deploymentsites", "pools"])
async def test_a_workload_deploys_and_scales_in_either_generation(
    deployer: DeployerFactory, controller_sim: RunningSimulator, contract: str
) -> None:
    await controller_sim.admin.set_contract(contract)
    d = await deployer()
    workload = await d.deploy()

    settled = await d.wait_settled(workload)
    await d.sim.admin.scale_workload(workload, 0)
    acks = await d.sim.admin.wait_for(lambda s: s["scaleReports"], timeout=30)

    assert settled["deploymentState"] == "Deployed", settled
    assert settled["statusMessage"] == "Deployed revision 1 of web 0.1.0"
    assert acks[0]["success"] is True, acks
    assert d.hub.contract.current is Contract(contract)
