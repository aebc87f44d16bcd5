"""PoolRegistrationService with an in-memory hub and Kubernetes store (see doubles.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from communication_operator.contracts import DeployedPoolDto, OperatorDeployedPoolReportDto, ServerMethod
from communication_operator.hub import NotConnected
from communication_operator.pools import (
    CommunicationPoolSpec,
    PoolProvisioner,
    PoolRef,
    PoolRegistrationService,
    PoolRegistry,
    PoolStatusWriter,
)
from communication_operator.pools.model import PoolKey
from communication_operator.pools.naming import pool_resource_name
from communication_operator.runtime.pools import bind_to_hub
from tests.unit.pools.doubles import FakeHub, FakeKube

POOL_A = "65f0c0ffee0000000000aaaa"
POOL_B = "65f0c0ffee0000000000bbbb"
POOL_C = "65f0c0ffee0000000000cccc"
NS = "pools"


class Workloads:
    def __init__(self, by_pool: dict[tuple[str, str], list[str]]) -> None:
        self.by_pool = by_pool

    async def workload_rt_ids_by_pool(self) -> dict[tuple[str, str], list[str]]:
        return self.by_pool


def make_service(
    hub: FakeHub,
    kube: FakeKube,
    *,
    central: bool = False,
    retry_seconds: float = 0,
    pending_grace: float = 0,
    max_message_bytes: int = 32 * 1024,
    workloads: Workloads | None = None,
    writer: PoolStatusWriter | None = None,
) -> tuple[PoolRegistrationService, PoolStatusWriter]:
    writer = writer or PoolStatusWriter(kube, retry_delays=(0.01,))
    provisioner = (
        PoolProvisioner(kube, namespace="octo", broker_user="octo", broker_password="broker-pw")
        if central
        else None
    )
    service = PoolRegistrationService(
        hub,
        PoolRegistry(),
        writer,
        central=central,
        provisioner=provisioner,
        workloads=workloads,
        retry_seconds=retry_seconds,
        pre_update_delay=0.05,
        max_message_bytes=max_message_bytes,
        pending_grace=pending_grace,
    )
    return service, writer


def pool(kube: FakeKube, name: str, tenant: str, rt_id: str) -> tuple[PoolRef, CommunicationPoolSpec]:
    kube.add_pool(NS, name, tenant, rt_id)
    return PoolRef(NS, name, f"uid-{name}"), CommunicationPoolSpec(tenantId=tenant, poolRtId=rt_id)


async def test_create_registers_and_marks_the_object_ready() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, writer = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)

    outcome = await service.ensure_registered(ref, spec, generation=1)
    await writer.flush()

    assert outcome.is_registered
    assert hub.calls_of(ServerMethod.REGISTER_POOL) == [("acme", POOL_A)]
    status = kube.status_of(NS, "a")
    assert status["communicationStatus"] == "Registered"
    assert status["phase"] == "Registered"
    assert status["observedGeneration"] == 1
    assert "lastRegistrationTime" in status
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Registered"]["status"]) == ("True", "True")
    assert conditions["Ready"]["observedGeneration"] == 1
    assert [(e[1], e[2]) for e in kube.events] == [("Normal", "Registered")]
    assert hub.reports == []  # edge mode never reports deployed state


async def test_refusal_shows_the_controllers_message_and_is_retried() -> None:
    hub, kube = FakeHub(), FakeKube()
    hub.refusals[POOL_A] = "Pool environment does not match operator mode"
    service, writer = make_service(hub, kube, retry_seconds=0.05)
    ref, spec = pool(kube, "a", "acme", POOL_A)

    outcome = await service.ensure_registered(ref, spec, generation=1)
    await writer.flush()

    assert not outcome.is_registered
    status = kube.status_of(NS, "a")
    assert status["communicationStatus"] == "Failed: Pool environment does not match operator mode"
    assert status["phase"] == "Failed"
    registered = next(c for c in status["conditions"] if c["type"] == "Registered")
    assert (registered["status"], registered["reason"]) == ("False", "RegistrationRefused")
    assert registered["message"] == "Pool environment does not match operator mode"
    assert kube.events[-1][1:3] == ("Warning", "RegistrationRefused")

    service.start()
    try:
        await asyncio.sleep(0.12)
        assert len(hub.calls_of(ServerMethod.REGISTER_POOL)) >= 2  # retried while refused
        events_while_refused = len(kube.events)
        hub.refusals.clear()
        await asyncio.sleep(0.12)
    finally:
        await service.stop()
    await writer.flush()
    assert kube.status_of(NS, "a")["communicationStatus"] == "Registered"
    assert events_while_refused == 1  # one event per transition, not per retry
    assert kube.events[-1][1:3] == ("Normal", "Registered")


async def test_disconnected_registration_waits_for_the_connect_hook() -> None:
    hub, kube = FakeHub(connected=False), FakeKube()
    service, writer = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)

    outcome = await service.ensure_registered(ref, spec, generation=1)
    await writer.flush()
    assert not outcome.is_registered
    status = kube.status_of(NS, "a")
    assert status["communicationStatus"] == "In Progress"
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["reason"] == "ControllerUnavailable"

    hub.connected = True
    await service.on_connected()
    await writer.flush()
    assert hub.calls == [
        (ServerMethod.REGISTER_OPERATOR, (False,)),
        (ServerMethod.REGISTER_POOL, ("acme", POOL_A)),
    ]
    assert kube.status_of(NS, "a")["communicationStatus"] == "Registered"


async def test_short_outages_do_not_flip_the_status() -> None:
    hub, kube = FakeHub(connected=False), FakeKube()
    service, writer = make_service(hub, kube, pending_grace=0.2)
    bind_to_hub(hub, service)
    ref, spec = pool(kube, "a", "acme", POOL_A)

    await service.ensure_registered(ref, spec, generation=1)
    hub.connected = True
    await service.on_connected()
    await asyncio.sleep(0.3)
    await writer.flush()
    assert kube.status_of(NS, "a")["communicationStatus"] == "Registered"
    assert [e[2] for e in kube.events] == ["Registered"]  # never showed "waiting"

    hub.set_connected(False)  # a long outage: shown after the grace period
    await asyncio.sleep(0.3)
    await writer.flush()
    assert kube.status_of(NS, "a")["communicationStatus"] == "In Progress"
    assert [e[2] for e in kube.events] == ["Registered", "ControllerUnavailable"]


async def test_connect_hook_edge_mode_registers_owned_pools_and_ignores_deployed_cloud_pools() -> None:
    hub, kube = FakeHub(), FakeKube()
    hub.deployed_pools = [DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_C)]
    service, _ = make_service(hub, kube)
    for name, rt_id in (("a", POOL_A), ("b", POOL_B)):
        await service.ensure_registered(*pool(kube, name, "acme", rt_id))
    hub.calls.clear()

    await service.on_connected()

    assert hub.calls[0] == (ServerMethod.REGISTER_OPERATOR, (False,))
    assert sorted(hub.calls_of(ServerMethod.REGISTER_POOL)) == [("acme", POOL_A), ("acme", POOL_B)]
    assert hub.calls_of(ServerMethod.REPORT_DEPLOYED_STATE) == []
    assert not [k for k in kube.objects if k[0] == "secrets"]  # edge never provisions


async def test_connect_hook_central_provisions_registers_and_reports_without_deleting() -> None:
    hub, kube = FakeHub(), FakeKube()
    workloads = Workloads({("acme", POOL_A): ["65f0c0ffee00000000000001"]})
    service, _ = make_service(hub, kube, central=True, workloads=workloads)
    await service.ensure_registered(*pool(kube, "a", "acme", POOL_A))
    # The controller lost its state: it lists only pool C now; pool A's object must survive.
    hub.deployed_pools = [DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_C)]
    hub.calls.clear()

    await service.on_connected()

    assert hub.calls[0] == (ServerMethod.REGISTER_OPERATOR, (True,))
    name_c = pool_resource_name(PoolKey("acme", POOL_C))
    assert ("communicationpools", "octo", name_c) in kube.objects
    assert ("secrets", "octo", f"{name_c}-octo-mesh-connection") in kube.objects
    assert ("communicationpools", NS, "a") in kube.objects
    assert hub.calls_of(ServerMethod.REGISTER_POOL) == [("acme", POOL_A)]  # C is registered by its handler
    [(reports,)] = hub.calls_of(ServerMethod.REPORT_DEPLOYED_STATE)
    assert reports == [
        OperatorDeployedPoolReportDto(
            tenant_id="acme", pool_rt_id=POOL_A, pool_name="", workload_rt_ids=["65f0c0ffee00000000000001"]
        )
    ]
    # The order on the wire: mode first, registrations, then the report.
    methods = [m for m, _ in hub.calls]
    assert methods == [
        ServerMethod.REGISTER_OPERATOR,
        ServerMethod.REGISTER_POOL,
        ServerMethod.REPORT_DEPLOYED_STATE,
    ]


async def test_connect_hook_chunks_large_reports_under_the_message_limit() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube, central=True, max_message_bytes=1024)
    for i in range(40):
        await service.ensure_registered(*pool(kube, f"p{i}", "acme", f"{i:024x}"))
    hub.calls.clear()

    await service.on_connected()

    chunks = [args[0] for args in hub.calls_of(ServerMethod.REPORT_DEPLOYED_STATE)]
    assert len(chunks) > 1
    assert sorted(r.pool_rt_id for chunk in chunks for r in chunk) == [f"{i:024x}" for i in range(40)]
    for chunk in chunks:
        message = {
            "type": 1,
            "invocationId": "12345",
            "target": "ReportDeployedStateAsync",
            "arguments": [[r.to_wire() for r in chunk]],
        }
        assert len(json.dumps(message, separators=(",", ":")).encode()) + 1 <= 1024


async def test_connect_hook_fails_when_the_connection_drops_so_the_hub_retries() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    await service.ensure_registered(*pool(kube, "a", "acme", POOL_A))
    hub.drop_on = ServerMethod.REGISTER_POOL
    with pytest.raises(NotConnected):
        await service.on_connected()


async def test_central_registration_sends_a_single_pool_report() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube, central=True)
    await service.ensure_registered(*pool(kube, "a", "acme", POOL_A))
    assert hub.reports == [
        (
            ServerMethod.REPORT_DEPLOYED_STATE,
            ([OperatorDeployedPoolReportDto(tenant_id="acme", pool_rt_id=POOL_A)],),
        )
    ]


async def test_delete_unregisters_and_refusal_is_soft() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    ref_a, spec_a = pool(kube, "a", "acme", POOL_A)
    ref_b, spec_b = pool(kube, "b", "gone-tenant", POOL_B)
    await service.ensure_registered(ref_a, spec_a)
    await service.ensure_registered(ref_b, spec_b)
    hub.refusals[POOL_B] = "Tenant 'gone-tenant' does not exist"

    result_a = await service.release(ref_a, spec_a)
    result_b = await service.release(ref_b, spec_b)

    assert result_a.unregistered
    assert not result_b.unregistered
    assert result_b.message == "Tenant 'gone-tenant' does not exist"
    assert hub.calls_of(ServerMethod.UNREGISTER_POOL) == [("acme", POOL_A), ("gone-tenant", POOL_B)]
    assert len(service.registry) == 0


async def test_deleted_pools_leave_no_per_pool_lock_behind() -> None:
    # One lock per pool key: a long-running operator with pool churn must not keep one per deleted pool.
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    ref_a, spec_a = pool(kube, "a", "acme", POOL_A)
    ref_b, spec_b = pool(kube, "b", "gone-tenant", POOL_B)
    await service.ensure_registered(ref_a, spec_a)
    await service.ensure_registered(ref_b, spec_b)
    hub.refusals[POOL_B] = "Tenant 'gone-tenant' does not exist"
    await service.release(ref_a, spec_a)
    await service.release(ref_b, spec_b)
    assert service._locks == {}


async def test_delete_while_disconnected_raises_so_the_handler_retries() -> None:
    hub, kube = FakeHub(connected=False), FakeKube()
    service, _ = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)
    await service.ensure_registered(ref, spec)
    with pytest.raises(NotConnected):
        await service.release(ref, spec)
    hub.connected = True
    assert (await service.release(ref, spec)).unregistered  # the retry after the operator restarted


async def test_object_deleted_while_operator_was_down_is_unregistered() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)  # never seen by this process
    assert (await service.release(ref, spec)).unregistered
    assert hub.calls_of(ServerMethod.UNREGISTER_POOL) == [("acme", POOL_A)]


async def test_two_objects_naming_one_pool_keep_it_registered_until_the_last_goes() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    ref_1, spec = pool(kube, "a1", "acme", POOL_A)
    ref_2, _ = pool(kube, "a2", "acme", POOL_A)
    await service.ensure_registered(ref_1, spec)
    await service.ensure_registered(ref_2, spec)

    assert not (await service.release(ref_1, spec)).unregistered
    assert hub.calls_of(ServerMethod.UNREGISTER_POOL) == []
    assert (await service.release(ref_2, spec)).unregistered


async def test_spec_change_moves_the_registration() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)
    await service.ensure_registered(ref, spec, generation=1)
    await service.ensure_registered(
        ref, CommunicationPoolSpec(tenantId="acme", poolRtId=POOL_B), generation=2
    )
    assert hub.calls_of(ServerMethod.UNREGISTER_POOL) == [("acme", POOL_A)]
    assert hub.calls_of(ServerMethod.REGISTER_POOL)[-1] == ("acme", POOL_B)
    assert service.registry.keys() == [PoolKey("acme", POOL_B)]


async def test_pre_update_tenant_unregisters_waits_and_reregisters_only_that_tenant() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    await service.ensure_registered(*pool(kube, "a", "acme", POOL_A))
    await service.ensure_registered(*pool(kube, "b", "acme", POOL_B))
    await service.ensure_registered(*pool(kube, "c", "other", POOL_C))
    hub.calls.clear()

    await service.pre_update_tenant("acme")  # returns at once: pushes are handled one at a time
    assert hub.calls_of(ServerMethod.REGISTER_POOL) == []
    await service.wait_for_tenant_cycles()

    methods = [(m, args[1]) for m, args in hub.calls]
    assert methods[:2] == [(ServerMethod.UNREGISTER_POOL, POOL_A), (ServerMethod.UNREGISTER_POOL, POOL_B)]
    assert sorted(methods[2:]) == [(ServerMethod.REGISTER_POOL, POOL_A), (ServerMethod.REGISTER_POOL, POOL_B)]
    assert all(args[0] == "acme" for _, args in hub.calls)


async def test_a_pool_named_again_during_a_tenant_update_waits_for_the_cycle() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)
    await service.ensure_registered(ref, spec)
    await service.pre_update_tenant("acme")
    await asyncio.sleep(0.01)  # unregistered; the cycle waits before registering again
    await service.release(ref, spec)
    recreated, _ = pool(kube, "a2", "acme", POOL_A)
    hub.calls.clear()
    await service.ensure_registered(recreated, spec)  # a new object for the same pool, mid-update
    assert hub.calls_of(ServerMethod.REGISTER_POOL) == []
    await service.wait_for_tenant_cycles()
    assert hub.calls_of(ServerMethod.REGISTER_POOL) == [("acme", POOL_A)]


async def test_pool_pushes_in_edge_mode_are_ignored() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube)
    await service.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_A))
    await service.pool_undeployed("acme", POOL_A)
    assert kube.log == []


async def test_bind_to_hub_wires_hook_listener_and_pushes() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, _ = make_service(hub, kube, central=True)
    bind_to_hub(hub, service)
    assert hub.hooks == [service.on_connected]
    assert hub.state_listeners == [service.on_connection_state]
    assert set(hub.handlers) == {"PoolDeployedAsync", "PoolUndeployedAsync", "PreUpdateTenantAsync"}


async def test_stop_leaves_pools_registered_and_writes_no_status() -> None:
    hub, kube = FakeHub(), FakeKube()
    service, writer = make_service(hub, kube, retry_seconds=10)
    bind_to_hub(hub, service)
    await service.ensure_registered(*pool(kube, "a", "acme", POOL_A))
    service.start()
    await service.stop()
    hub.set_connected(False)  # the hub closes after the service stopped
    await writer.flush()
    assert hub.calls_of(ServerMethod.UNREGISTER_POOL) == []
    assert kube.status_of(NS, "a")["communicationStatus"] == "Registered"
