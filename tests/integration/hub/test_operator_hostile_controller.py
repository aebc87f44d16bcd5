"""The running operator against a hostile controller (issue 13): invalid workload pushes are refused with
one failed status each and never deployed; a report the encoder could not write no longer stops every
later report; /healthz reflects the supervised tasks."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from typing import Any

import aiohttp
import pytest

from communication_operator.contracts import ServerMethod
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import KubeCluster
from octo_devtools.testing.waiting import eventually
from tests.integration.operator_cli import operator_cli_env, start_operator_cli
from tests.integration.pools.conftest import (  # noqa: F401 - fixtures used by name
    OperatorFactory,
    Pools,
    pools,
    start_operator,
)

pytestmark = pytest.mark.cluster

TENANT = "acme"
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS


def workload_push(pool: str, rt_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "tenantId": TENANT,
        "poolRtId": pool,
        "workloadName": "web",
        "workloadRtId": rt_id,
        "workloadType": 0,
        "repositoryUrl": "https://charts.invalid/stable",
        "chartName": "web",
        **fields,
    }


async def statuses(sim: RunningSimulator) -> dict[str, list[dict[str, Any]]]:
    by_workload: dict[str, list[dict[str, Any]]] = {}
    for call in await sim.admin.calls(STATUS):
        body = call["arguments"][0]
        by_workload.setdefault(body["workloadRtId"], []).append(body)
    return by_workload


async def online_pool(sim: RunningSimulator, pools: Pools) -> str:  # noqa: F811
    pool = await sim.admin.create_pool(TENANT, "edge-site", "Edge")
    await pools.create("edge-site", TENANT, pool)

    async def online() -> bool:
        return bool((await sim.admin.pool(pool))["communicationState"] == "Online")

    await eventually(online, timeout=30, what="pool Online")
    return pool


async def test_invalid_workload_pushes_get_one_failed_status_each_and_are_never_deployed(
    kube_cluster: KubeCluster,
    controller_sim: RunningSimulator,
    pools: Pools,  # noqa: F811
    start_operator: OperatorFactory,  # noqa: F811
) -> None:
    await start_operator(central=False)
    pool = await online_pool(controller_sim, pools)
    adapter_pool = await controller_sim.admin.create_workload(
        TENANT, pool, "pool-of-adapters", repository_url="https://charts.invalid/stable", chart_name="web"
    )
    invalid = {
        "65F0C0FFEE0000000000BBBB": "is not a runtime id (24 lowercase hexadecimal characters)",
        "65f0c0ffee0000000000bbb": "is not a runtime id (24 lowercase hexadecimal characters)",
        "../../etc": "is not a runtime id (24 lowercase hexadecimal characters)",
    }
    for rt_id in invalid:
        await controller_sim.admin.push("WorkloadDeployedAsync", [workload_push(pool, rt_id)])
    # A workload type newer than this operator (3): refused naming the type, not left Pending.
    newer_type = workload_push(pool, adapter_pool, workloadType=3)
    await controller_sim.admin.push("WorkloadDeployedAsync", [newer_type])
    await controller_sim.admin.push(
        "WorkloadUndeployedAsync", [{"tenantId": TENANT, "poolRtId": pool, "workloadRtId": "../../etc"}]
    )

    async def all_answered() -> dict[str, list[dict[str, Any]]] | None:
        found = await statuses(controller_sim)
        return found if len(found) == len(invalid) + 1 else None

    answered = await eventually(all_answered, timeout=20, what="a failed status for every invalid deploy")
    await asyncio.sleep(1.0)  # nothing more arrives
    assert await statuses(controller_sim) == answered
    for rt_id, problem in invalid.items():
        (status,) = answered[rt_id]
        assert status["success"] is False
        assert status["tenantId"] == TENANT
        assert status["statusMessage"].startswith("Invalid workload: workloadRtId ")
        assert problem in status["statusMessage"]
    (status,) = answered[adapter_pool]
    assert status["success"] is False
    assert "workloadType': 3 is not a workload type this operator deploys" in (status["statusMessage"])
    workload = await controller_sim.admin.workload(adapter_pool)
    assert workload["deploymentState"] == "Error"
    listed = await kube_cluster.helm_async(
        "list", "-n", pools.namespace, "--deployed", "--failed", "--pending", "--uninstalling", "-o", "json"
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout or "[]") == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def healthz(http: aiohttp.ClientSession, port: int) -> tuple[int, dict[str, Any]] | None:
    try:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            return response.status, dict(await response.json(content_type=None))
    except (aiohttp.ClientError, json.JSONDecodeError, ValueError):
        return None


async def test_a_report_utf8_cannot_carry_no_longer_stops_the_operators_reports(
    kube_cluster: KubeCluster,
    controller_sim: RunningSimulator,
    pools: Pools,  # noqa: F811
) -> None:
    # The operator as a process (`communication-operator run`), with its /healthz.
    health_port = free_port()
    env = operator_cli_env(
        controller_sim.base_url, pools.namespace, HEALTH__PORT=str(health_port), METRICS__PORT="0"
    )
    process = await start_operator_cli(kube_cluster.kubeconfig, env)
    assert process.stdout is not None
    output_task = asyncio.create_task(process.stdout.read())
    try:
        pool = await online_pool(controller_sim, pools)
        first, second = "65f0c0ffee00000000000001", "65f0c0ffee00000000000002"
        # The controller's JSON escapes a lone surrogate in a name as \ud800; the operator used to
        # write it back raw in its status report, UTF-8 could not encode it, and the outbox task died.
        poison = json.dumps(workload_push(pool, first, repositoryUrl="ftp://charts.invalid"))
        poison = poison.replace('"workloadName": "web"', '"workloadName": "bad \\ud800 name"')
        push = {"type": 1, "target": "WorkloadDeployedAsync", "arguments": ["PLACEHOLDER"]}
        await controller_sim.admin.send_raw(json.dumps(push).replace('"PLACEHOLDER"', poison))
        await controller_sim.admin.push(
            "WorkloadDeployedAsync", [workload_push(pool, second, repositoryUrl="ftp://charts.invalid")]
        )

        async def both_reported() -> dict[str, list[dict[str, Any]]] | None:
            found = await statuses(controller_sim)
            return found if first in found and second in found else None

        reported = await eventually(both_reported, timeout=20, what="both failed statuses")
        assert reported[first][0]["workloadName"] == "bad \ufffd name"
        assert "unsupported scheme" in reported[second][0]["statusMessage"]
        async with aiohttp.ClientSession() as http:
            status, body = await eventually(lambda: healthz(http, health_port), what="/healthz")
        assert status == 200, body
        assert body["tasks"] == {"alive": True}
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = (await output_task).decode()
    assert "died" not in output, output
