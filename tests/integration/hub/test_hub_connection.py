"""The hub connection against the controller simulator: faults, reconnects, auth, the outbox."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from communication_operator.contracts import (
    ClientMethod,
    DeployedPoolDto,
    ServerMethod,
    WorkloadDeploymentStatusDto,
)
from communication_operator.hub import (
    Backoff,
    HubConnection,
    HubError,
    HubOptions,
    MessageTooLarge,
    NotConnected,
)
from communication_operator.metrics import OperatorMetrics
from octo_devtools.controller_sim import running_simulator
from octo_devtools.controller_sim.harness import RunningSimulator
from octo_devtools.testing.simulator import ProcessFactory, SimulatorFactory, fast_options

TENANT = "acme"
FAST = {
    "keepalive_interval": 0.5,
    "server_timeout": 2.0,
    "invoke_timeout": 5.0,
    "backoff": Backoff(initial=0.05, maximum=0.5),
}


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    async def get_token(self) -> str:
        return self.token


@asynccontextmanager
async def hub_for(url: str, token: str | None = None, **options: Any) -> AsyncIterator[HubConnection]:
    hub = HubConnection(HubOptions(url=url, **{**FAST, **options}), StaticToken(token) if token else None)
    registrations: list[str] = []

    async def register() -> None:
        await hub.invoke(ServerMethod.REGISTER_OPERATOR, True)
        registrations.append(hub.connection_id or "")

    hub.on_connected(register)
    hub.registrations = registrations  # type: ignore[attr-defined]
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop(drain_timeout=2.0)


def registrations(hub: HubConnection) -> list[str]:
    return hub.registrations  # type: ignore[attr-defined,no-any-return]


async def eventually(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_invoke_returns_the_validated_result(controller_sim: RunningSimulator) -> None:
    pool = await controller_sim.admin.create_pool(TENANT, "cloud-1", "Cloud")
    await controller_sim.admin.deploy_pool(pool)
    async with hub_for(controller_sim.base_url) as hub:
        await hub.wait_connected(5)
        result = await hub.invoke(ServerMethod.REGISTER_OPERATOR, True)
        assert result == [DeployedPoolDto(tenant_id=TENANT, pool_rt_id=pool)]


async def test_falls_back_to_negotiate_v0_on_an_older_server(
    controller_sim_factory: SimulatorFactory,
) -> None:
    sim = await controller_sim_factory(max_negotiate_version=0)
    async with hub_for(sim.base_url) as hub:
        await eventually(lambda: len(registrations(hub)) == 1)
        # On v0 the public connection id doubles as the transport id; the simulator logs the version.
        state = await sim.admin.state()
        assert [o["connectionId"] for o in state["operators"]] == registrations(hub)


async def test_hub_errors_carry_the_controller_message(controller_sim: RunningSimulator) -> None:
    async with hub_for(controller_sim.base_url) as hub:
        await hub.wait_connected(5)
        with pytest.raises(HubError) as excinfo:
            await hub.invoke(ServerMethod.REGISTER_POOL, TENANT, "not-an-object-id")
        assert excinfo.value.is_hub_exception
        assert "not-an-object-id" in excinfo.value.hub_message
        assert "HubException" not in excinfo.value.hub_message
        # The connection survives a hub error.
        assert await hub.invoke(ServerMethod.REGISTER_OPERATOR, True) == []


async def test_invoke_while_down_raises_not_connected() -> None:
    async with hub_for(f"http://127.0.0.1:{free_port()}") as hub:
        with pytest.raises(NotConnected):
            await hub.invoke(ServerMethod.REGISTER_OPERATOR, True)


async def test_server_down_at_start_then_up() -> None:
    port = free_port()
    async with hub_for(f"http://127.0.0.1:{port}") as hub:
        await asyncio.sleep(0.5)
        assert not hub.connected
        async with running_simulator(fast_options(), port=port) as sim:
            await hub.wait_connected(5)
            await sim.admin.wait_for_call(ServerMethod.REGISTER_OPERATOR)


@pytest.mark.parametrize("fault", ["drop", "close-error", "close-reconnect"])
async def test_reconnects_and_reregisters_after_a_fault(controller_sim: RunningSimulator, fault: str) -> None:
    async with hub_for(controller_sim.base_url) as hub:
        await eventually(lambda: len(registrations(hub)) == 1)
        await controller_sim.admin.fault(fault)
        await eventually(lambda: len(registrations(hub)) == 2, what="re-registration")
        assert registrations(hub)[0] != registrations(hub)[1], "a fresh negotiate gives a new connection id"
        await hub.invoke(ServerMethod.REGISTER_OPERATOR, True)


async def test_frozen_server_is_detected_by_the_server_timeout(controller_sim: RunningSimulator) -> None:
    async with hub_for(controller_sim.base_url) as hub:
        await eventually(lambda: len(registrations(hub)) == 1)
        await controller_sim.admin.fault("freeze")
        await eventually(lambda: not hub.connected, timeout=5, what="server timeout")
        await controller_sim.admin.fault("thaw")
        await eventually(lambda: len(registrations(hub)) >= 2, what="re-registration after thaw")


async def test_kill_and_restart_with_state_loss(controller_sim_process_factory: ProcessFactory) -> None:
    sim = await controller_sim_process_factory()
    assert sim.base_url is not None
    async with hub_for(sim.base_url) as hub:
        await eventually(lambda: len(registrations(hub)) == 1)
        await sim.kill()
        await eventually(lambda: not hub.connected, what="disconnect")
        await sim.start()
        await eventually(lambda: len(registrations(hub)) == 2, what="re-registration after restart")
        await sim.admin.wait_for_call(ServerMethod.REGISTER_OPERATOR)


async def test_auth_required(controller_sim_factory: SimulatorFactory) -> None:
    sim = await controller_sim_factory(token="s3cr3t-token")
    async with hub_for(sim.base_url, token="wrong") as hub:
        await asyncio.sleep(0.5)
        assert not hub.connected
    async with hub_for(sim.base_url, token="s3cr3t-token") as hub:
        await hub.wait_connected(5)
        calls = await sim.admin.calls()
        assert "s3cr3t-token" not in repr(calls)


async def test_token_never_reaches_logs(
    controller_sim_factory: SimulatorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sim = await controller_sim_factory(token="s3cr3t-token")
    with caplog.at_level(logging.DEBUG):
        async with hub_for(sim.base_url, token="s3cr3t-token") as hub:
            await hub.wait_connected(5)
            await sim.admin.fault("drop")
            await eventually(lambda: len(registrations(hub)) == 2)
        async with hub_for(sim.base_url, token="s3cr3t-token-but-wrong") as hub:
            await asyncio.sleep(0.3)
    assert "s3cr3t" not in caplog.text


async def test_reports_made_while_disconnected_are_delivered_once_in_order() -> None:
    port = free_port()
    async with hub_for(f"http://127.0.0.1:{port}") as hub:
        reports = [
            WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id=f"{i:024x}", success=True)
            for i in range(100)
        ]
        for report in reports:
            await hub.report(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, report)
        assert hub.outbox_depth == 100
        async with running_simulator(fast_options(), port=port) as sim:
            await eventually(lambda: hub.outbox_depth == 0, what="outbox drained")
            calls = await sim.admin.calls(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS)
            assert [c["arguments"][0]["workloadRtId"] for c in calls] == [r.workload_rt_id for r in reports]
            # The registration hook ran before the first report.
            methods = [c["method"] for c in await sim.admin.calls()]
            assert methods[0] == ServerMethod.REGISTER_OPERATOR


async def test_a_report_settles_when_the_controller_has_it(controller_sim: RunningSimulator) -> None:
    async with hub_for(controller_sim.base_url) as hub:
        await hub.wait_connected(5)
        status = WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id="e" * 24, success=True)
        delivered = await hub.report(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, status)
        assert await asyncio.wait_for(delivered, 5) is True
        assert await controller_sim.admin.calls(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS)


async def test_report_in_flight_during_a_restart_is_not_lost(
    controller_sim_process_factory: ProcessFactory,
) -> None:
    sim = await controller_sim_process_factory()
    assert sim.base_url is not None
    async with hub_for(sim.base_url) as hub:
        await eventually(lambda: len(registrations(hub)) == 1)
        await sim.kill()
        report = WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id="a" * 24, success=False)
        await hub.report(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, report)
        await sim.start()
        call = await sim.admin.wait_for_call(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, timeout=10)
        assert call["arguments"][0]["workloadRtId"] == "a" * 24


async def test_pushes_are_dispatched_one_at_a_time(controller_sim: RunningSimulator) -> None:
    active = 0
    peak = 0
    seen: list[str] = []

    async def on_pre_update(tenant_id: str) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        seen.append(tenant_id)
        active -= 1

    async with hub_for(controller_sim.base_url) as hub:
        hub.on(ClientMethod.PRE_UPDATE_TENANT, on_pre_update)
        await eventually(lambda: len(registrations(hub)) == 1)
        for i in range(5):
            await controller_sim.admin.pre_update(f"t{i}")
        await eventually(lambda: len(seen) == 5)
    assert seen == [f"t{i}" for i in range(5)]
    assert peak == 1


async def test_malformed_and_unknown_pushes_are_logged_and_ignored(
    controller_sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[DeployedPoolDto] = []

    async def on_pool_deployed(pool: DeployedPoolDto) -> None:
        received.append(pool)

    async def failing(tenant_id: str) -> None:
        raise RuntimeError("handler bug")

    async with hub_for(controller_sim.base_url) as hub:
        hub.on(ClientMethod.POOL_DEPLOYED, on_pool_deployed)
        hub.on(ClientMethod.PRE_UPDATE_TENANT, failing)
        await eventually(lambda: len(registrations(hub)) == 1)
        with caplog.at_level(logging.WARNING):
            await controller_sim.admin.push("PoolDeployedAsync", [{"tenantId": 5}])
            await controller_sim.admin.push("PoolDeployedAsync", [])
            await controller_sim.admin.push("NoSuchCallbackAsync", [1])
            await controller_sim.admin.push("PreUpdateTenantAsync", ["acme"])
            await controller_sim.admin.push(
                "PoolDeployedAsync", [{"tenantId": "ok", "poolRtId": "p", "new": 1}]
            )
            await eventually(lambda: len(received) == 1)
        assert received == [DeployedPoolDto(tenant_id="ok", pool_rt_id="p")]
        assert "field 'tenantId'" in caplog.text
        assert "expected 1 argument(s), got 0" in caplog.text
        assert "NoSuchCallbackAsync" in caplog.text
        assert "handler bug" in caplog.text
        assert hub.connected
        assert len(registrations(hub)) == 1


async def test_a_failing_registration_hook_tears_the_connection_down(
    controller_sim: RunningSimulator,
) -> None:
    hub = HubConnection(HubOptions(url=controller_sim.base_url, **FAST))
    attempts = 0

    async def flaky_registration() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("not yet")
        await hub.invoke(ServerMethod.REGISTER_OPERATOR, False)

    hub.on_connected(flaky_registration)
    await hub.start()
    try:
        await hub.wait_connected(5)
        assert attempts == 3
        state = await controller_sim.admin.state()
        assert len(state["operators"]) == 1
    finally:
        await hub.stop()


async def test_stop_drains_queued_reports(controller_sim: RunningSimulator) -> None:
    async with hub_for(controller_sim.base_url) as hub:
        await hub.wait_connected(5)
        for i in range(20):
            await hub.report(
                ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS,
                WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id=f"{i:024x}", success=True),
            )
    calls = await controller_sim.admin.calls(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS)
    assert len(calls) == 20


async def test_an_oversized_message_is_refused_before_it_closes_the_connection(
    controller_sim: RunningSimulator,
) -> None:
    async with hub_for(controller_sim.base_url) as hub:
        await hub.wait_connected(5)
        huge = WorkloadDeploymentStatusDto(
            tenant_id=TENANT, workload_rt_id="b" * 24, status_message="x" * 40_000
        )
        with pytest.raises(MessageTooLarge):
            await hub.invoke(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, huge)
        assert hub.connected


async def test_metrics_follow_the_connection(controller_sim: RunningSimulator) -> None:
    metrics = OperatorMetrics()
    hub = HubConnection(HubOptions(url=controller_sim.base_url, **FAST), metrics=metrics)
    hub.on_connected(lambda: hub.invoke(ServerMethod.REGISTER_OPERATOR, True))
    await hub.start()
    try:
        await hub.wait_connected(5)
        with pytest.raises(HubError):
            await hub.invoke(ServerMethod.REGISTER_POOL, TENANT, "bad")
        await controller_sim.admin.fault("drop")
        await eventually(lambda: hub.stats.connects == 2)
        await hub.report(
            ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS,
            WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id="c" * 24, success=True),
        )
        await eventually(lambda: hub.outbox_depth == 0)
        text = metrics.exposition().decode()
    finally:
        await hub.stop()
    assert "communication_operator_hub_connected 1.0" in text
    assert "communication_operator_hub_reconnects_total 1.0" in text
    assert 'method="RegisterPoolAsync",outcome="error"' in text
    assert 'method="RegisterOperatorAsync",outcome="ok"} 2.0' in text
    assert "communication_operator_outbox_depth 0.0" in text


async def test_a_connect_attempt_to_a_frozen_controller_gives_up_after_the_handshake_timeout(
    controller_sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    # A controller that accepts TCP but answers nothing (a hung process, thread-pool starvation) must
    # not hold the supervisor in one negotiate forever: each attempt is bounded, then retried.
    async with hub_for(controller_sim.base_url, handshake_timeout=0.5) as hub:
        await eventually(lambda: len(registrations(hub)) == 1)
        with caplog.at_level(logging.DEBUG, logger="communication_operator.hub.connection"):
            await controller_sim.admin.fault("freeze")
            await eventually(lambda: not hub.connected, timeout=5, what="server timeout")
            await eventually(
                lambda: "cannot connect to the controller" in caplog.text,
                timeout=4,
                what="the attempt against the frozen controller timing out",
            )


async def test_a_failing_state_listener_never_stops_the_reconnects(
    controller_sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    # state_listeners are other components' code; a bug there must be logged, not end the supervisor
    # (which would leave the operator disconnected for good while its process looks healthy).
    async with hub_for(controller_sim.base_url) as hub:

        def broken_listener(connected: bool) -> None:
            raise RuntimeError(f"listener bug (connected={connected})")

        hub.state_listeners.append(broken_listener)
        await eventually(lambda: len(registrations(hub)) == 1)
        await controller_sim.admin.fault("drop")
        await eventually(lambda: len(registrations(hub)) == 2, what="re-registration after a drop")
        await hub.wait_connected(5)
        assert "listener bug" in caplog.text


async def test_stop_drains_reports_while_the_controller_comes_back(
    controller_sim_process_factory: ProcessFactory,
) -> None:
    sim = await controller_sim_process_factory()
    assert sim.base_url is not None
    hub = HubConnection(HubOptions(url=sim.base_url, **FAST))
    hub.on_connected(lambda: hub.invoke(ServerMethod.REGISTER_OPERATOR, True))
    await hub.start()
    await hub.wait_connected(5)
    await sim.kill()
    await eventually(lambda: not hub.connected, what="disconnect")
    report = WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id="d" * 24, success=True)
    await hub.report(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, report)

    async def controller_returns() -> None:
        await asyncio.sleep(0.5)
        await sim.start()

    returning = asyncio.create_task(controller_returns())
    await hub.stop(drain_timeout=10)  # SIGTERM arrived while the operator was reconnecting
    await returning
    assert hub.outbox_depth == 0
    call = await sim.admin.wait_for_call(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS)
    assert call["arguments"][0]["workloadRtId"] == "d" * 24
