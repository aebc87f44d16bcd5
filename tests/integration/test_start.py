"""The start sequence recovers from a failed step (issue 13, item 8).

kopf retries the startup handler after it raised. A context that marked itself started before its
steps ran returned at once on that retry: the hub was never started and nothing noticed.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest

from communication_operator.app import build_context
from communication_operator.contracts import ServerMethod
from communication_operator.settings import HealthSettings, MetricsSettings, Settings
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import KubeCluster

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
    context = await build_context(settings, kubeconfig=kube_cluster.kubeconfig, in_process=False)
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
