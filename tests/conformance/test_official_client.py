"""The official SignalR JavaScript client (@microsoft/signalr, pinned in package-lock.json) against the
simulator. If the reference client and the simulator disagree, the simulator is wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from communication_operator.contracts import WorkloadDeployedDto
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.simulator import SimulatorFactory

pytestmark = pytest.mark.conformance

HERE = Path(__file__).parent
TOKEN = "conformance-token-4f1c"
TENANT = "conformance"


def _require_node() -> str:
    if not (HERE / "node_modules" / "@microsoft" / "signalr").is_dir():
        pytest.fail(
            f"{HERE}/node_modules is missing the official SignalR client; run scripts/bootstrap "
            "(it runs `npm ci --prefix tests/conformance`)."
        )
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; the conformance test needs Node.js (see scripts/bootstrap).")
    return node


async def _run_client(sim: RunningSimulator, contract: str = "pools") -> list[dict[str, Any]]:
    node = _require_node()
    process = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "official_client.js"),
        env={**os.environ, "SIM_URL": sim.base_url, "SIM_TOKEN": TOKEN, "SIM_CONTRACT": contract},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("the official client did not finish within 60 s")
    records = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    log = stderr.decode()
    failed = [r for r in records if r.get("step") == "failed"]
    assert process.returncode == 0, f"client exited with {process.returncode}: {failed}\nclient log:\n{log}"
    assert not failed, f"client failed: {failed}\nclient log:\n{log}"
    return records


def _steps(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["step"]: r for r in records if r["step"] != "reconnect"}


@pytest.mark.parametrize("contract", ["pools", "deploymentsites"])
async def test_official_client_accepts_the_simulator(
    controller_sim_factory: SimulatorFactory, caplog: pytest.LogCaptureFixture, contract: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="octo_devtools")
    sim = await controller_sim_factory(token=TOKEN, contract=contract)
    ds = contract == "deploymentsites"
    register_pool = "RegisterDeploymentSiteAsync" if ds else "RegisterPoolAsync"
    other_register_pool = "RegisterPoolAsync" if ds else "RegisterDeploymentSiteAsync"
    pool_field = "deploymentSiteRtId" if ds else "poolRtId"

    records = await _run_client(sim, contract)
    steps = _steps(records)
    deployed_pool = steps["setup"]["deployedPool"]
    later_pool = steps["setup"]["laterPool"]

    # Bearer auth: negotiate without the token is refused; with accessTokenFactory it works.
    assert "401" in steps["anonymous-start"]["error"]
    assert steps["close-error"]["tokenRequests"] >= 5

    # Invoke with a result; error texts exactly as ASP.NET Core words them; void methods.
    assert steps["register-operator"]["result"] == [{"tenantId": TENANT, pool_field: deployed_pool}]
    assert steps["register-bad-pool"]["error"] == (
        f"An unexpected error occurred invoking '{register_pool}' on the server. HubException: "
        "'not-an-id' is not a valid pool runtime id (expected 24 hexadecimal characters)."
    )
    assert steps["unknown-method"]["error"] == (
        "Failed to invoke 'NoSuchMethodAsync' due to an error on the server. "
        "HubException: Method does not exist."
    )
    assert (
        steps["wrong-arity"]["error"] == f"Failed to invoke '{register_pool}' due to an error on the server."
    )
    # The other generation's name does not exist (the DS controller kept no aliases).
    assert steps["other-generation"]["error"] == (
        f"Failed to invoke '{other_register_pool}' due to an error on the server. "
        "HubException: Method does not exist."
    )
    assert "result" in steps["register-pool"]
    assert steps["register-pool"]["result"] is None

    # A non-blocking send reached the hub without an invocation id.
    progress_calls = await sim.admin.calls("ReportWorkloadDeploymentProgressAsync")
    assert progress_calls[0]["invocationId"] is None

    # Server pushes with the contract's wire names and DTO shapes.
    assert steps["push-pool-deployed"]["arguments"] == [{"tenantId": TENANT, pool_field: later_pool}]
    (workload_wire,) = steps["push-workload-deployed"]["arguments"]
    assert workload_wire[pool_field] == deployed_pool
    workload = WorkloadDeployedDto.model_validate(workload_wire)
    assert workload.workload_rt_id == steps["push-workload-deployed"]["workloadRtId"]
    assert workload.values[0].value == "s3cr3t"
    assert workload.is_reconciliation is False

    # Reconnects: a new connection each time, and the hub answers again afterwards.
    reconnects = {r["kind"]: r for r in records if r["step"] == "reconnect"}
    assert set(reconnects) == {"close-reconnect", "drop", "restart"}
    both_pools = [
        {"tenantId": TENANT, pool_field: deployed_pool},
        {"tenantId": TENANT, pool_field: later_pool},
    ]
    for kind, record in reconnects.items():
        assert record["reconnected"] != record["before"], kind
        assert record["result"] == both_pools, kind
    assert reconnects["close-reconnect"]["reconnecting"] is None  # a graceful close carries no error
    assert "1006" in reconnects["drop"]["reconnecting"]  # no Close message, just a dead socket

    # Freeze: only the client's server timeout can notice; it reconnects after the thaw.
    assert (
        steps["freeze"]["reconnecting"]
        == "Server timeout elapsed without receiving a message from the server."
    )
    assert steps["freeze"]["result"] == both_pools

    # Close with an error and no allowReconnect: the official client gives up, as it must.
    assert (
        steps["close-error"]["closed"]
        == "Server returned an error on close: Connection closed with an error."
    )
    assert steps["close-error"]["state"] == "Disconnected"

    # Skip-negotiation path, then a message over the 32 KB default limit closes the connection with an error.
    assert steps["skip-negotiation"]["result"] == both_pools
    assert (
        steps["oversized"]["closed"] == "Server returned an error on close: Connection closed with an error."
    )
    assert steps["oversized"]["state"] == "Disconnected"

    # The bearer token never appears in the simulator's log.
    assert "opened" in caplog.text  # the log did record the connections
    assert TOKEN not in caplog.text
