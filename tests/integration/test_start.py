"""The start sequence recovers from a failed step (issue 13, item 8).

kopf retries the startup handler after it raised. A context that marked itself started before its
steps ran returned at once on that retry: the hub was never started and nothing noticed.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import urllib.request

import pytest

from communication_operator.contracts import ServerMethod
from communication_operator.runtime import build_runtime
from communication_operator.settings import HealthSettings, MetricsSettings, Settings
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import KubeCluster
from octo_devtools.testing.waiting import eventually
from tests.integration.operator_cli import operator_cli_env, start_operator_cli

pytestmark = pytest.mark.cluster


def occupied_port() -> socket.socket:
    """A listening socket on a free port of every address, as another process holding it would."""
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    return holder


async def test_a_start_that_failed_on_the_metrics_port_completes_on_retry_and_connects_the_hub(
    kube_cluster: KubeCluster, controller_sim: RunningSimulator, namespace: str
) -> None:
    holder = occupied_port()
    port = int(holder.getsockname()[1])
    settings = Settings(
        communication_controller_uri=controller_sim.base_url,
        watch_namespace=namespace,
        pool_namespace=namespace,
        metrics=MetricsSettings(port=port),
        health=HealthSettings(port=0),
    )
    context = await build_runtime(settings, kubeconfig=kube_cluster.kubeconfig, in_process=False)
    try:
        with pytest.raises(OSError, match="in use"):
            await context.start()  # what kopf's startup handler sees on the first attempt
        holder.close()

        await context.start()  # kopf's retry

        await context.hub.wait_connected(10)
        await controller_sim.admin.wait_for_call(ServerMethod.REGISTER_OPERATOR, timeout=10)
        body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        assert "hub_connected" in body
    finally:
        holder.close()
        await context.stop()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.slow
async def test_the_operator_process_recovers_from_an_occupied_metrics_port(
    kube_cluster: KubeCluster, controller_sim: RunningSimulator, namespace: str
) -> None:
    # From outside: `communication-operator run` as a process; kopf retries the failed startup (30 s).
    holder = occupied_port()
    metrics_port = int(holder.getsockname()[1])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        health_port = int(probe.getsockname()[1])
    env = operator_cli_env(
        controller_sim.base_url, namespace, METRICS__PORT=str(metrics_port), HEALTH__PORT=str(health_port)
    )
    process = await start_operator_cli(kube_cluster.kubeconfig, env)
    assert process.stdout is not None
    lines: list[str] = []

    async def collect() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            lines.append(line.decode(errors="replace"))

    reader = asyncio.create_task(collect())
    try:
        await eventually(
            lambda: _true(any("will try again" in line for line in lines)),
            timeout=30,
            what="the startup handler to fail on the occupied port",
        )
        assert await controller_sim.admin.calls(ServerMethod.REGISTER_OPERATOR) == []
        holder.close()

        await controller_sim.admin.wait_for_call(ServerMethod.REGISTER_OPERATOR, timeout=60)

        async def connected() -> bool:
            body = await asyncio.to_thread(_get, f"http://127.0.0.1:{metrics_port}/metrics")
            return "hub_connected 1.0" in body

        await eventually(connected, timeout=15, what="the metrics to show the hub connected")
    finally:
        holder.close()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        await reader


async def _true(value: bool) -> bool:
    return value
