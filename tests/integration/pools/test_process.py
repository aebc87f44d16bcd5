"""``communication-operator run`` as a real process: registers pools, serves /healthz and /metrics, and
on SIGTERM exits cleanly without unregistering (the controller shows the pool Offline, not Unregistered)."""

from __future__ import annotations

import asyncio
import signal
import socket

import aiohttp
import pytest

from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import KubeCluster
from octo_devtools.testing.waiting import eventually
from tests.integration.operator_cli import operator_cli_env, start_operator_cli
from tests.integration.pools.conftest import Pools

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_run_registers_serves_healthz_and_stops_on_sigterm_without_unregistering(
    kube_cluster: KubeCluster, controller_sim: RunningSimulator, pools: Pools
) -> None:
    rt_id = await controller_sim.admin.create_pool("acme", "site", "Edge")
    health_port, metrics_port = free_port(), free_port()
    env = operator_cli_env(
        controller_sim.base_url,
        pools.namespace,
        HEALTH__PORT=str(health_port),
        METRICS__PORT=str(metrics_port),
    )
    process = await start_operator_cli(kube_cluster.kubeconfig, env)
    assert process.stdout is not None
    output_task = asyncio.create_task(process.stdout.read())  # keep the pipe drained
    try:
        await pools.create("site", "acme", rt_id)
        await eventually(
            lambda: _state_is(controller_sim, rt_id, "Online"), timeout=30, what="the pool Online via the CLI"
        )
        async with aiohttp.ClientSession() as http:
            health = await eventually(lambda: _healthz(http, health_port), what="/healthz")
            # The pools gauge, counted from the registry by the scraping thread.
            await eventually(
                lambda: _scrape_shows(
                    http, metrics_port, 'communication_operator_pools{phase="Registered"} 1.0'
                ),
                what="the pools gauge to count the registered pool",
            )
        assert health["hub"]["connected"] is True
        assert health["hub"]["pools"] == 1

        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = (await output_task).decode()
    assert exit_code == 0, output
    assert "Signal SIGTERM is received" in output
    assert await _state_is(controller_sim, rt_id, "Offline") or await eventually(
        lambda: _state_is(controller_sim, rt_id, "Offline"),
        what="the pool Offline after the operator stopped",
    )
    assert await controller_sim.admin.calls("UnregisterPoolAsync") == []
    assert await pools.get("site") is not None


async def _state_is(sim: RunningSimulator, rt_id: str, state: str) -> bool:
    return bool((await sim.admin.pool(rt_id))["communicationState"] == state)


async def _healthz(http: aiohttp.ClientSession, port: int) -> dict[str, object] | None:
    try:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            if response.status == 200:
                return dict(await response.json())
    except aiohttp.ClientError:
        return None
    return None


async def _scrape_shows(http: aiohttp.ClientSession, port: int, sample: str) -> bool:
    try:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            return response.status == 200 and sample in await response.text()
    except aiohttp.ClientError:
        return False
