"""The simulator as a child process: kill -9 keeps pools (state file, like the controller's database)
and loses every connection; SIGTERM asks clients to reconnect."""

from __future__ import annotations

import pytest

from octo_devtools.testing.simulator import ProcessFactory
from tests.simulator.wire import RawHubClient

pytestmark = pytest.mark.slow


async def test_kill_and_restart_on_the_same_port(controller_sim_process_factory: ProcessFactory) -> None:
    token = "process-token"
    sim = await controller_sim_process_factory(token=token)
    pool = await sim.admin.create_pool("t", "p")
    await sim.admin.deploy_pool(pool)
    client = await RawHubClient.connect(sim.hub_url, token=token)
    try:
        first_url = sim.base_url
        await sim.kill()
        with pytest.raises(ConnectionError):
            await client.next_message(skip_pings=False)
    finally:
        await client.close()
    await sim.start()
    assert sim.base_url == first_url
    async with await RawHubClient.connect(sim.hub_url, token=token) as client:
        registered = await client.invoke("RegisterOperatorAsync", True)
    assert registered["result"] == [{"tenantId": "t", "poolRtId": pool}]
    assert token not in sim.log_path.read_text()


async def test_sigterm_sends_close_with_allow_reconnect(
    controller_sim_process_factory: ProcessFactory,
) -> None:
    sim = await controller_sim_process_factory()
    async with await RawHubClient.connect(sim.hub_url) as client:
        await sim.terminate()
        assert await client.next_message() == {"type": 7, "allowReconnect": True}
