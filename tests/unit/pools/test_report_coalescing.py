"""Central mode at scale: the single-pool reverse syncs of a burst share one listing and one report.

Every registration outside the connect hook is followed by a ``ReportDeployedStateAsync`` naming the
pool and its workloads. A burst of registrations (a controller deploying hundreds of pools at once, a
tenant pre-update, the retry loop) must not list the deployed workloads once per pool: the listing is
shared by every pool waiting at the time, and so is the report (chunked under the message limit). A
lone registration is reported at once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from communication_operator.contracts import DeployedPoolDto, OperatorDeployedPoolReportDto, ServerMethod
from communication_operator.pools import (
    CommunicationPoolSpec,
    PoolKey,
    PoolProvisioner,
    PoolRef,
    PoolRegistrationService,
    PoolRegistry,
    PoolStatusWriter,
    pool_pushes,
)
from communication_operator.pools.naming import pool_resource_name
from communication_operator.pools.status import RegistrationState
from communication_operator.runtime.pools import bind_to_hub
from tests.unit.pools.doubles import CountingWorkloads, FakeHub, FakeKube

NS = "pools"
TENANT = "acme"


def rt_id(index: int) -> str:
    return f"65f0c0ffee{index:014x}"


def workload_id(index: int) -> str:
    return f"77770000ee{index:014x}"


def make_service(
    hub: FakeHub,
    kube: FakeKube,
    workloads: CountingWorkloads,
    *,
    max_message_bytes: int = 32 * 1024,
    retry_seconds: float = 0,
) -> PoolRegistrationService:
    return PoolRegistrationService(
        hub,
        PoolRegistry(),
        PoolStatusWriter(kube, retry_delays=(0.01,)),
        central=True,
        provisioner=PoolProvisioner(kube, namespace="octo", broker_user="octo", broker_password="pw"),
        workloads=workloads,
        retry_seconds=retry_seconds,
        pre_update_delay=0.01,
        max_message_bytes=max_message_bytes,
        pending_grace=0,
    )


def pools(kube: FakeKube, count: int, tenant: str = TENANT) -> list[tuple[PoolRef, CommunicationPoolSpec]]:
    result = []
    for i in range(count):
        name = f"{tenant}-{i}"
        kube.add_pool(NS, name, tenant, rt_id(i))
        result.append(
            (PoolRef(NS, name, f"uid-{name}"), CommunicationPoolSpec(tenantId=tenant, poolRtId=rt_id(i)))
        )
    return result


def reported(hub: FakeHub) -> list[OperatorDeployedPoolReportDto]:
    """Every pool report queued so far, in order (each queued message holds a list of them)."""
    messages = [args for method, args in hub.reports if method == ServerMethod.REPORT_DEPLOYED_STATE]
    return [report for (chunk,) in messages for report in chunk]


def report_messages(hub: FakeHub) -> list[list[OperatorDeployedPoolReportDto]]:
    return [list(args[0]) for method, args in hub.reports if method == ServerMethod.REPORT_DEPLOYED_STATE]


async def test_a_burst_of_registrations_shares_listings_and_reports() -> None:
    """300 CommunicationPools handled at once (kopf runs one handler per object concurrently)."""
    hub, kube = FakeHub(), FakeKube()
    workloads = CountingWorkloads(
        {(TENANT, rt_id(i)): [workload_id(i)] for i in range(0, 300, 10)}, delay=0.01
    )
    service = make_service(hub, kube, workloads)

    outcomes = await asyncio.gather(*(service.ensure_registered(ref, spec) for ref, spec in pools(kube, 300)))
    await service.wait_for_reports()

    assert all(o.state is RegistrationState.REGISTERED for o in outcomes)
    # The first registration lists at once; the other 299 arrive during that listing and share the next.
    assert workloads.listings <= 3, workloads.listings
    assert workloads.max_in_flight == 1
    assert len(report_messages(hub)) <= 3
    counts = Counter(r.pool_rt_id for r in reported(hub))
    assert counts == Counter(rt_id(i) for i in range(300))  # every pool exactly once
    by_pool = {r.pool_rt_id: r for r in reported(hub)}
    assert by_pool[rt_id(10)].workload_rt_ids == [workload_id(10)]
    assert by_pool[rt_id(11)].workload_rt_ids == []
    assert all(r.tenant_id == TENANT and r.pool_name == "" for r in by_pool.values())


async def test_a_lone_registration_is_reported_before_it_returns_and_a_stream_in_batches() -> None:
    hub, kube = FakeHub(), FakeKube()
    workloads = CountingWorkloads(delay=0.01)
    service = make_service(hub, kube, workloads)
    registrations = pools(kube, 50)

    await service.ensure_registered(*registrations[0])
    assert [r.pool_rt_id for r in reported(hub)] == [rt_id(0)]

    # One after another, the way a controller's pool deploys arrive: they join the next batch.
    for ref, spec in registrations[1:]:
        await service.ensure_registered(ref, spec)
    await service.wait_for_reports()

    assert sorted(r.pool_rt_id for r in reported(hub)) == sorted(rt_id(i) for i in range(50))
    assert workloads.listings == 2
    assert len(report_messages(hub)) == 2


async def test_pre_update_of_100_pools_lists_once_and_reports_them_together() -> None:
    hub, kube = FakeHub(), FakeKube()
    workloads = CountingWorkloads(delay=0.01)
    service = make_service(hub, kube, workloads)
    for ref, spec in pools(kube, 100):
        await service.ensure_registered(ref, spec)
    for ref, spec in pools(kube, 3, tenant="other"):
        await service.ensure_registered(ref, spec)
    await service.wait_for_reports()
    hub.reports.clear()
    workloads.listings = 0

    await service.pre_update_tenant(TENANT)
    await service.wait_for_tenant_cycles()
    await service.wait_for_reports()

    assert len(hub.calls_of(ServerMethod.REGISTER_POOL)) == 103 + 100
    assert workloads.listings == 1
    [message] = report_messages(hub)
    assert sorted(r.pool_rt_id for r in message) == sorted(rt_id(i) for i in range(100))
    assert {r.tenant_id for r in message} == {TENANT}


async def test_pools_registered_on_reconnect_outside_the_hook_share_one_listing() -> None:
    """Pools claimed while the controller was away register when the connection is back."""
    hub, kube = FakeHub(connected=False), FakeKube()
    workloads = CountingWorkloads(delay=0.01)
    service = make_service(hub, kube, workloads)
    hub.state_listeners.append(service.on_connection_state)
    for ref, spec in pools(kube, 60):
        outcome = await service.ensure_registered(ref, spec)
        assert outcome.state is RegistrationState.PENDING
    assert workloads.listings == 0

    hub.set_connected(True)
    for _ in range(200):
        if len(reported(hub)) == 60:
            break
        await asyncio.sleep(0.01)

    assert sorted(r.pool_rt_id for r in reported(hub)) == sorted(rt_id(i) for i in range(60))
    assert workloads.listings == 1
    await service.stop()


async def test_retry_loop_reports_its_round_with_one_listing() -> None:
    hub, kube = FakeHub(), FakeKube()
    workloads = CountingWorkloads(delay=0.01)
    service = make_service(hub, kube, workloads, retry_seconds=0.05)
    for i in range(40):
        hub.refusals[rt_id(i)] = "Pool not found"
    for ref, spec in pools(kube, 40):
        await service.ensure_registered(ref, spec)
    assert workloads.listings == 0  # nothing registered, nothing reported
    hub.refusals.clear()

    service.start()
    try:
        for _ in range(300):
            if len(reported(hub)) >= 40:
                break
            await asyncio.sleep(0.01)
    finally:
        await service.stop()

    assert sorted(r.pool_rt_id for r in reported(hub)) == sorted(rt_id(i) for i in range(40))
    assert workloads.listings == 1


async def test_coalesced_reports_are_chunked_under_the_message_limit() -> None:
    hub, kube = FakeHub(), FakeKube()
    workloads = CountingWorkloads({(TENANT, rt_id(i)): [workload_id(i)] for i in range(40)}, delay=0.01)
    service = make_service(hub, kube, workloads, max_message_bytes=1024)

    await asyncio.gather(*(service.ensure_registered(ref, spec) for ref, spec in pools(kube, 40)))
    await service.wait_for_reports()

    messages = report_messages(hub)
    assert len(messages) > 2  # one small batch, then the rest split under the limit
    assert workloads.listings <= 3
    assert sorted(r.pool_rt_id for r in reported(hub)) == sorted(rt_id(i) for i in range(40))
    for chunk in messages:
        envelope: dict[str, Any] = {
            "type": 1,
            "invocationId": "12345",
            "target": "ReportDeployedStateAsync",
            "arguments": [[r.to_wire() for r in chunk]],
        }
        assert len(json.dumps(envelope, separators=(",", ":")).encode()) + 1 <= 1024


async def test_a_failed_listing_reports_pools_only_and_the_next_batch_lists_again() -> None:
    hub, kube = FakeHub(), FakeKube()
    workloads = CountingWorkloads({(TENANT, rt_id(0)): [workload_id(0)]}, delay=0.01)
    workloads.failures = 1
    service = make_service(hub, kube, workloads)
    [(ref, spec)] = pools(kube, 1)

    await service.ensure_registered(ref, spec)
    assert reported(hub) == [OperatorDeployedPoolReportDto(tenant_id=TENANT, pool_rt_id=rt_id(0))]

    await service.ensure_registered(ref, spec)  # a later registration lists again
    await service.wait_for_reports()
    assert reported(hub)[-1].workload_rt_ids == [workload_id(0)]
    assert workloads.listings == 2


async def test_stop_during_a_listing_leaves_no_waiter_hanging() -> None:
    hub, kube = FakeHub(), FakeKube()
    service = make_service(hub, kube, CountingWorkloads(delay=10))
    waiters = [asyncio.create_task(service.ensure_registered(ref, spec)) for ref, spec in pools(kube, 5)]
    await asyncio.sleep(0.05)

    await asyncio.wait_for(service.stop(), 2)

    _, pending = await asyncio.wait(waiters, timeout=2)
    assert not pending
    assert reported(hub) == []


async def test_a_pool_deleted_while_its_batch_lists_is_left_out() -> None:
    """A report re-registers its pools at the controller: one unregistered meanwhile must not be named."""
    hub, kube = FakeHub(), FakeKube()
    workloads = CountingWorkloads(delay=0.05)
    service = make_service(hub, kube, workloads)
    (ref_a, spec_a), (ref_b, spec_b) = pools(kube, 2)
    first = asyncio.create_task(service.ensure_registered(ref_a, spec_a))
    await asyncio.sleep(0.01)  # the first batch is listing
    second = asyncio.create_task(service.ensure_registered(ref_b, spec_b))
    await asyncio.sleep(0.01)  # b is registered and waits for the next batch

    await service.release(ref_b, spec_b)
    await asyncio.gather(first, second)
    await service.wait_for_reports()

    assert [r.pool_rt_id for r in reported(hub)] == [rt_id(0)]


# -- the pool pushes that lead to those registrations ---------------------------------------------------


async def test_pool_deploys_are_provisioned_side_by_side_sharing_the_listing() -> None:
    """The hub hands pushes over one at a time; 60 deploys must not cost 60 x (list, get, create, create)."""
    hub, kube = FakeHub(), FakeKube(delay=0.02)
    service = make_service(hub, kube, CountingWorkloads())
    bind_to_hub(hub, service)
    handler = hub.handlers["PoolDeployedAsync"]
    loop = asyncio.get_running_loop()
    started = loop.time()

    for i in range(60):  # the way the hub dispatches: one after another, each awaited
        await handler(DeployedPoolDto(tenant_id=TENANT, pool_rt_id=rt_id(i)))
    await service.wait_for_pushes()

    elapsed = loop.time() - started
    created = {name for kind, ns, name in kube.objects if kind == "communicationpools" and ns == "octo"}
    assert created == {pool_resource_name(PoolKey(TENANT, rt_id(i))) for i in range(60)}
    assert len([k for k in kube.objects if k[0] == "secrets"]) == 60
    assert kube.max_in_flight > 1
    listings = kube.log.count("list communicationpools octo")
    assert listings <= 10, listings  # one each before
    assert elapsed < 60 * 4 * 0.02 / 2, elapsed  # serially: 60 pools x 4 round trips of 20 ms


async def test_pushes_of_one_pool_keep_their_order() -> None:
    hub, kube = FakeHub(), FakeKube(delay=0.01)
    service = make_service(hub, kube, CountingWorkloads())
    bind_to_hub(hub, service)
    deployed, undeployed = hub.handlers["PoolDeployedAsync"], hub.handlers["PoolUndeployedAsync"]
    other = DeployedPoolDto(tenant_id=TENANT, pool_rt_id=rt_id(1))

    await deployed(DeployedPoolDto(tenant_id=TENANT, pool_rt_id=rt_id(0)))
    await deployed(other)
    await undeployed(TENANT, rt_id(0))
    await deployed(DeployedPoolDto(tenant_id=TENANT, pool_rt_id=rt_id(0)))
    await undeployed(TENANT, rt_id(0))
    await service.wait_for_pushes()

    name = pool_resource_name(PoolKey(TENANT, rt_id(0)))
    mine = [entry for entry in kube.log if name in entry and not entry.startswith("list")]
    assert mine == [
        f"create secrets octo/{name}-octo-mesh-connection",
        f"create communicationpools octo/{name}",
        f"delete communicationpools octo/{name}",
        f"delete secrets octo/{name}-octo-mesh-connection",
        f"create secrets octo/{name}-octo-mesh-connection",
        f"create communicationpools octo/{name}",
        f"delete communicationpools octo/{name}",
        f"delete secrets octo/{name}-octo-mesh-connection",
    ]
    assert ("communicationpools", "octo", pool_resource_name(PoolKey(TENANT, rt_id(1)))) in kube.objects


async def test_a_failing_pool_push_is_logged_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    hub, kube = FakeHub(), FakeKube()
    service = make_service(hub, kube, CountingWorkloads())
    bind_to_hub(hub, service)
    original = kube.create_secret
    failing = pool_resource_name(PoolKey(TENANT, rt_id(0)))

    async def create_secret(namespace: str, body: dict[str, Any]) -> bool:
        if body["metadata"]["name"].startswith(failing):
            raise RuntimeError("API server unavailable")
        return await original(namespace, body)

    kube.create_secret = create_secret  # type: ignore[method-assign]
    for i in range(3):
        await hub.handlers["PoolDeployedAsync"](DeployedPoolDto(tenant_id=TENANT, pool_rt_id=rt_id(i)))
    await service.wait_for_pushes()

    assert len([k for k in kube.objects if k[0] == "communicationpools"]) == 2
    assert any("failed for pool" in r.getMessage() and rt_id(0) in r.getMessage() for r in caplog.records)


async def test_a_pool_undeployed_and_deployed_again_gets_its_objects_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shared CommunicationPool listing must not outlive an undeploy."""
    monkeypatch.setattr(pool_pushes, "PROVISIONED_MAX_AGE", 0.05)
    hub, kube = FakeHub(), FakeKube(delay=0.005)
    service = make_service(hub, kube, CountingWorkloads())
    bind_to_hub(hub, service)
    deployed, undeployed = hub.handlers["PoolDeployedAsync"], hub.handlers["PoolUndeployedAsync"]
    pool_a = DeployedPoolDto(tenant_id=TENANT, pool_rt_id=rt_id(0))
    await deployed(pool_a)
    await service.wait_for_pushes()
    await asyncio.sleep(0.1)
    await deployed(DeployedPoolDto(tenant_id=TENANT, pool_rt_id=rt_id(1)))  # its listing shows pool A
    await service.wait_for_pushes()

    await undeployed(TENANT, rt_id(0))
    await deployed(pool_a)
    await service.wait_for_pushes()

    name = pool_resource_name(PoolKey(TENANT, rt_id(0)))
    assert ("communicationpools", "octo", name) in kube.objects
    assert ("secrets", "octo", f"{name}-octo-mesh-connection") in kube.objects


async def test_a_listing_a_little_old_serves_at_once_while_a_new_one_is_made() -> None:
    """A burst must not stall every PROVISIONED_MAX_AGE on a listing that takes seconds to make."""
    fetched: list[int] = []
    release = asyncio.Event()

    async def fetch() -> int:
        fetched.append(len(fetched))
        if len(fetched) > 1:
            await release.wait()  # the second listing is slow
        return len(fetched)

    listing = pool_pushes.RecentListing(fetch, max_age=0.05, stale_age=1.0)
    assert await listing.get() == 1
    await asyncio.sleep(0.1)  # past max_age, within stale_age

    assert await asyncio.wait_for(listing.get(), 0.05) == 1  # the old one, at once
    assert len(fetched) == 2  # and the new one is being made
    release.set()
    await asyncio.sleep(0.01)
    assert await listing.get() == 2

    listing.invalidate()  # an undeploy: only a listing made after it will do
    assert await listing.get() == 3
    await listing.stop()
