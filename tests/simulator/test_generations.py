"""The simulator as a DeploymentSite-era controller (--contract deploymentsites), on the raw wire."""

from __future__ import annotations

from octo_devtools.testing.simulator import SimulatorFactory
from tests.simulator.wire import RawHubClient


async def test_deployment_site_names_on_the_wire(controller_sim_factory: SimulatorFactory) -> None:
    sim = await controller_sim_factory(contract="deploymentsites")
    pool = await sim.admin.create_pool("acme", "site", "Cloud")
    await sim.admin.deploy_pool(pool)
    async with await RawHubClient.connect(sim.hub_url) as hub:
        registered = await hub.invoke("RegisterOperatorAsync", True)
        assert registered["result"] == [{"tenantId": "acme", "deploymentSiteRtId": pool}]
        old_name = await hub.invoke("RegisterPoolAsync", "acme", pool)
        assert old_name["error"] == (
            "Failed to invoke 'RegisterPoolAsync' due to an error on the server. "
            "HubException: Method does not exist."
        )
        assert (await hub.invoke("RegisterDeploymentSiteAsync", "acme", pool)).get("error") is None
        assert (await sim.admin.pool(pool))["communicationState"] == "Online"

        await sim.admin.undeploy_pool(pool)
        push = await hub.next_message()
        assert (push["target"], push["arguments"]) == ("DeploymentSiteUndeployedAsync", ["acme", pool])


async def test_the_pool_era_does_not_know_deployment_site_names(
    controller_sim_factory: SimulatorFactory,
) -> None:
    sim = await controller_sim_factory()
    async with await RawHubClient.connect(sim.hub_url) as hub:
        unknown = await hub.invoke("RegisterDeploymentSiteAsync", "acme", "65f0c0ffee0000000000aaaa")
    assert unknown["error"].endswith("HubException: Method does not exist.")
