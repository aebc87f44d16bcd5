"""Records JSON cannot parse are logged (masked, bounded) and dropped; the connection stays (issue 13)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from communication_operator.contracts import ClientMethod, ServerMethod
from communication_operator.hub import Backoff, HubConnection, HubOptions
from communication_operator.metrics import OperatorMetrics
from octo_devtools.controller_sim.harness import RunningSimulator

SECRET = "hunter2-repository-secret"
HUGE_NUMBER = '{"type":1,"target":"PreUpdateTenantAsync","arguments":["t1"],"n":' + "9" * 5000 + "}"
DEEP_NESTING = '{"type":1,"target":"PreUpdateTenantAsync","arguments":' + "[" * 100_000 + "]" * 100_000 + "}"
BROKEN_PUSH_WITH_SECRET = (
    '{"type":1,"target":"WorkloadDeployedAsync","arguments":[{"tenantId":"acme",'
    f'"repositoryPassword":"{SECRET}","values":[{{"path":"a","value":"{SECRET}","isSecret":true'
)
VALID_PUSH = json.dumps({"type": 1, "target": "PreUpdateTenantAsync", "arguments": ["after"]})


async def test_malformed_records_are_dropped_and_named_and_the_connection_is_kept(
    controller_sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = OperatorMetrics()
    hub = HubConnection(
        HubOptions(
            url=controller_sim.base_url,
            keepalive_interval=0.5,
            server_timeout=2.0,
            backoff=Backoff(initial=0.05, maximum=0.5),
        ),
        metrics=metrics,
    )
    connections: list[str] = []
    tenants: list[str] = []

    async def register() -> None:
        await hub.invoke(ServerMethod.REGISTER_OPERATOR, True)
        connections.append(hub.connection_id or "")

    async def on_pre_update(tenant_id: str) -> None:
        tenants.append(tenant_id)

    hub.on_connected(register)
    hub.on(ClientMethod.PRE_UPDATE_TENANT, on_pre_update)
    await hub.start()
    try:
        await hub.wait_connected(5)
        with caplog.at_level(logging.INFO):
            # All in one frame, the valid push last: what follows a bad record is still read.
            records = (HUGE_NUMBER, DEEP_NESTING, BROKEN_PUSH_WITH_SECRET, VALID_PUSH)
            await controller_sim.admin.send_raw(*records)
            async with asyncio.timeout(5):
                while tenants != ["after"]:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # a teardown would show by now
        assert hub.connected
        assert len(connections) == 1, "the connection was torn down and re-established"
        assert "lost the connection" not in caplog.text
        dropped = [r.getMessage() for r in caplog.records if "malformed record" in r.getMessage()]
        assert len(dropped) == 3, dropped
        assert "digits" in dropped[0]  # Python's integer digit limit, named
        assert "nested too deeply" in dropped[1]
        assert "Unterminated string" in dropped[2] or "Expecting" in dropped[2]
        assert '"target":"WorkloadDeployedAsync"' in dropped[2]  # the shape is shown ...
        assert SECRET not in caplog.text  # ... never the values
        assert all(len(line) < 600 for line in dropped)
        assert "communication_operator_hub_malformed_records_total 3.0" in metrics.exposition().decode()
    finally:
        await hub.stop(drain_timeout=1.0)
