"""The pools gauge follows every registration transition; transition log lines carry the pool context."""

from __future__ import annotations

import json
import logging

import pytest

from communication_operator.logs import JsonFormatter
from communication_operator.metrics import OperatorMetrics
from communication_operator.pools import (
    PoolRegistrationService,
    PoolRegistry,
    PoolStatusWriter,
    RegistrationOutcome,
)
from communication_operator.runtime.pools import bind_to_hub
from tests.unit.pools.doubles import FakeHub, FakeKube
from tests.unit.pools.test_registration import POOL_A, POOL_B, pool


def _gauge(metrics: OperatorMetrics) -> dict[str, float]:
    return {
        phase: metrics.registry.get_sample_value("communication_operator_pools", {"phase": phase}) or 0.0
        for phase in ("Pending", "Registered", "Failed")
    }


def _service(hub: FakeHub, kube: FakeKube, metrics: OperatorMetrics) -> PoolRegistrationService:
    service = PoolRegistrationService(
        hub,
        PoolRegistry(),
        PoolStatusWriter(kube, retry_delays=(0.01,)),
        central=False,
        retry_seconds=0,
        pending_grace=0,
        metrics=metrics,
    )
    bind_to_hub(hub, service)
    return service


async def test_pools_gauge_follows_register_refuse_disconnect_and_delete() -> None:
    hub, kube, metrics = FakeHub(), FakeKube(), OperatorMetrics()
    service = _service(hub, kube, metrics)
    assert _gauge(metrics) == {"Pending": 0, "Registered": 0, "Failed": 0}

    ref_a, spec_a = pool(kube, "a", "acme", POOL_A)
    ref_b, spec_b = pool(kube, "b", "acme", POOL_B)
    hub.refusals[POOL_B] = "Pool not found"
    await service.ensure_registered(ref_a, spec_a)
    await service.ensure_registered(ref_b, spec_b)
    assert _gauge(metrics) == {"Pending": 0, "Registered": 1, "Failed": 1}

    hub.set_connected(False)  # the registered pool waits for the controller again
    assert _gauge(metrics) == {"Pending": 1, "Registered": 0, "Failed": 1}
    assert {phase: count for phase, count in _gauge(metrics).items() if count} == {"Pending": 1, "Failed": 1}

    hub.set_connected(True)
    hub.refusals.clear()
    await service.on_connected()
    assert _gauge(metrics) == {"Pending": 0, "Registered": 2, "Failed": 0}

    await service.release(ref_a, spec_a)
    assert _gauge(metrics) == {"Pending": 0, "Registered": 1, "Failed": 0}
    await service.release(ref_b, spec_b)
    assert _gauge(metrics) == {"Pending": 0, "Registered": 0, "Failed": 0}
    await service.stop()


async def test_pools_gauge_is_read_from_the_registry_at_scrape_time() -> None:
    hub, kube, metrics = FakeHub(), FakeKube(), OperatorMetrics()
    registry = PoolRegistry()
    PoolRegistrationService(
        hub, registry, PoolStatusWriter(kube), central=False, retry_seconds=0, metrics=metrics
    )
    ref_a, spec_a = pool(kube, "a", "acme", POOL_A)
    ref_b, spec_b = pool(kube, "b", "acme", POOL_B)
    # Claimed straight in the registry, past the service: the gauge still counts them (no cache to update).
    registry.claim(ref_a, spec_a.key, 1)
    entry_b, _ = registry.claim(ref_b, spec_b.key, 1)
    entry_b.record(RegistrationOutcome.registered())
    assert _gauge(metrics) == {"Pending": 1, "Registered": 1, "Failed": 0}
    registry.release(ref_a)
    assert _gauge(metrics) == {"Pending": 0, "Registered": 1, "Failed": 0}


async def test_transition_lines_carry_tenant_and_pool(caplog: pytest.LogCaptureFixture) -> None:
    hub, kube, metrics = FakeHub(), FakeKube(), OperatorMetrics()
    service = _service(hub, kube, metrics)
    ref_a, spec_a = pool(kube, "a", "acme", POOL_A)
    ref_b, spec_b = pool(kube, "b", "acme", POOL_B)
    hub.refusals[POOL_B] = "Pool not found"
    with caplog.at_level(logging.DEBUG, logger="communication_operator.pools"):
        await service.ensure_registered(ref_a, spec_a)
        await service.ensure_registered(ref_a, spec_a)  # no transition: not logged at INFO again
        await service.ensure_registered(ref_b, spec_b)
        await service.release(ref_a, spec_a)
    lines = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name.startswith("communication_operator.pools") and r.levelno >= logging.INFO
    ]
    registered = [line for line in lines if line["message"].startswith("registered pool")]
    assert len(registered) == 1
    assert (registered[0]["tenant"], registered[0]["pool"]) == ("acme", POOL_A)
    refused = next(line for line in lines if "refused pool" in line["message"])
    assert (refused["level"], refused["pool"]) == ("warning", POOL_B)
    unregistered = next(line for line in lines if line["message"].startswith("unregistered pool"))
    assert (unregistered["pool"], unregistered["namespace"], unregistered["name"]) == (POOL_A, "pools", "a")
    await service.stop()
