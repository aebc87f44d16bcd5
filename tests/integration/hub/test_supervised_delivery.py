"""Reports always get through or are dropped visibly: poison, huge fields and lone surrogates (issue 13)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from communication_operator.contracts import ServerMethod, WorkloadDeploymentStatusDto
from communication_operator.hub import Backoff, HubConnection, HubOptions
from communication_operator.metrics import OperatorMetrics
from octo_devtools.controller_sim.harness import RunningSimulator

TENANT = "acme"
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS
FAST = {"keepalive_interval": 0.5, "server_timeout": 2.0, "backoff": Backoff(initial=0.05, maximum=0.5)}


@asynccontextmanager
async def connected(sim: RunningSimulator, metrics: OperatorMetrics) -> AsyncIterator[HubConnection]:
    hub = HubConnection(HubOptions(url=sim.base_url, **FAST), metrics=metrics)  # type: ignore[arg-type]
    hub.on_connected(lambda: hub.invoke(ServerMethod.REGISTER_OPERATOR, True))
    await hub.start()
    try:
        await hub.wait_connected(5)
        yield hub
    finally:
        await hub.stop(drain_timeout=2.0)


def status(workload: str, **fields: object) -> WorkloadDeploymentStatusDto:
    return WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id=workload, **fields)  # type: ignore[arg-type]


async def delivered(sim: RunningSimulator, count: int) -> list[dict[str, object]]:
    await sim.admin.wait_for_call(STATUS, count=count, timeout=5)
    return [call["arguments"][0] for call in await sim.admin.calls(STATUS)]


async def test_a_workload_name_utf8_cannot_carry_does_not_stop_the_outbox(
    controller_sim: RunningSimulator,
) -> None:
    # A lone surrogate arrives as the JSON escape "\ud800" in a controller push; json.dumps writes it
    # back raw and UTF-8 cannot encode it. The outbox used to die on it, silently, for good.
    metrics = OperatorMetrics()
    async with connected(controller_sim, metrics) as hub:
        await hub.report(STATUS, status("a" * 24, workload_name="bad \ud800 name"))
        await hub.report(STATUS, status("b" * 24, workload_name="fine"))
        reports = await delivered(controller_sim, 2)
        assert [r["workloadRtId"] for r in reports] == ["a" * 24, "b" * 24]
        assert reports[0]["workloadName"] == "bad \ufffd name"
        assert hub.connected
        assert hub.supervisor.healthy


async def test_a_poison_report_is_dropped_with_a_log_line_and_a_metric_and_the_outbox_goes_on(
    controller_sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = OperatorMetrics()
    # Built without validation: a value no encoder knows, as a bug elsewhere might produce.
    poison = WorkloadDeploymentStatusDto.model_construct(
        tenant_id=TENANT, workload_rt_id="c" * 24, workload_name="x", success=object()
    )
    async with connected(controller_sim, metrics) as hub:
        with caplog.at_level(logging.WARNING):
            settled = await hub.report(STATUS, poison)
            await hub.report(STATUS, status("d" * 24))
            reports = await delivered(controller_sim, 1)
            assert await asyncio.wait_for(settled, 5) is False
        assert [r["workloadRtId"] for r in reports] == ["d" * 24]
        dropped = [r for r in caplog.records if r.getMessage().startswith(f"dropping {STATUS}")]
        assert len(dropped) == 1
        assert "'" + "c" * 24 + "'" in dropped[0].getMessage()
        exposition = metrics.exposition().decode()
        assert (
            'communication_operator_reports_dropped_total{method="ReportWorkloadDeploymentStatusAsync",'
            'reason="failed"} 1.0'
        ) in exposition
        assert hub.supervisor.healthy
        assert hub.connected


async def test_a_report_with_a_megabyte_workload_name_is_delivered_bounded(
    controller_sim: RunningSimulator,
) -> None:
    metrics = OperatorMetrics()
    async with connected(controller_sim, metrics) as hub:
        huge = status(
            "e" * 24, workload_name="n" * 1_000_000, success=False, status_message="chart not found"
        )
        await hub.report(STATUS, huge)
        (report,) = await delivered(controller_sim, 1)
        assert report["workloadRtId"] == "e" * 24
        assert report["statusMessage"] == "chart not found"
        assert "characters omitted" in str(report["workloadName"])
        assert len(str(report["workloadName"])) < 300
        assert hub.connected


async def test_authentication_refusals_after_the_first_connection_are_warnings_rate_limited(
    controller_sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    hub = HubConnection(
        HubOptions(
            url=controller_sim.base_url,
            **FAST,  # type: ignore[arg-type]
            refused_backoff=Backoff(initial=0.05, maximum=0.1),
            auth_refusal_log_interval=0.6,
        )
    )
    hub.on_connected(lambda: hub.invoke(ServerMethod.REGISTER_OPERATOR, True))
    await hub.start()
    try:
        await hub.wait_connected(5)
        with caplog.at_level(logging.DEBUG, logger="communication_operator.hub"):
            await controller_sim.admin.fault("reject-auth")  # e.g. the client secret was revoked
            await controller_sim.admin.fault("drop")
            await asyncio.sleep(2.0)
        refusals = [r for r in caplog.records if "refuses" in r.getMessage() or "HTTP 401" in r.getMessage()]
        above_debug = [r for r in refusals if r.levelno >= logging.WARNING]
        assert len(refusals) >= 8, "the reconnect loop kept trying"
        assert 2 <= len(above_debug) <= 5, [(r.levelname, r.getMessage()) for r in above_debug]
        assert "more refusal(s) in the last" in above_debug[-1].getMessage()
        await controller_sim.admin.fault("accept-auth")
        await hub.wait_connected(5)
    finally:
        await hub.stop(drain_timeout=1.0)
