"""Refused pushes go through the exactly-once machinery of final statuses (review findings 8 and 9)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from communication_operator.contracts import ClientMethod, InvalidPush, PushIds
from communication_operator.runtime.workloads import bind_workloads_to_hub

from .doubles import POOL, TENANT, WORKLOAD, Harness, until
from .test_service_delivery import OutboxHub, hub_of


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    h.hub = BoundHub()
    h.rebuild()
    bind_workloads_to_hub(h.hub, h.service)
    h.fake.history((1, "deployed"))
    return h


class BoundHub(OutboxHub):
    """The hub as bind_workloads_to_hub sees it: the refusal handler is what the operator routes to."""

    def __init__(self) -> None:
        super().__init__()
        self.refusal_handlers: dict[str, Callable[[InvalidPush], Awaitable[None]]] = {}
        self.connected_hooks: list[Callable[[], Awaitable[None]]] = []

    def on(
        self,
        method: Any,
        handler: Callable[..., Awaitable[None]],
        on_invalid: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        if on_invalid is not None:
            self.refusal_handlers[str(method)] = on_invalid

    def on_connected(self, hook: Callable[[], Awaitable[None]]) -> None:
        self.connected_hooks.append(hook)


def refusals(h: Harness) -> Callable[[InvalidPush], Awaitable[None]]:
    assert isinstance(h.hub, BoundHub)
    return h.hub.refusal_handlers[str(ClientMethod.WORKLOAD_DEPLOYED)]


def bad_push() -> InvalidPush:
    ids = PushIds(tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="Mesh Adapter")
    return InvalidPush("WorkloadDeployedAsync", ["workloadType 7 is not a known workload type"], ids)


async def test_a_refusal_redelivered_while_its_status_is_queued_is_answered_once(harness: Harness) -> None:
    await refusals(harness)(bad_push())
    await harness.settle()
    await refusals(harness)(bad_push())  # the controller re-dispatches it after a reconnect
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.success is False
    assert "not a known workload type" in status.status_message


async def test_a_refusal_stops_the_running_deploy_of_the_workload_which_reports_nothing_after_it(
    harness: Harness,
) -> None:
    harness.fake.set("upgrade", sleep=30)
    await harness.deploy()
    await until(lambda: harness.fake.calls("upgrade"))

    await refusals(harness)(bad_push())
    await harness.settle()

    assert harness.fake.terminated() == ["upgrade"]
    (status,) = harness.hub.statuses()
    assert status.success is False
    assert harness.hub.reports[-1][1] is status  # nothing after the final status


async def test_a_delivered_status_answers_a_redispatch_on_the_same_connection(harness: Harness) -> None:
    await harness.deploy(chart_version="0.1.0")
    await harness.settle()
    hub_of(harness).deliver_all()

    await harness.deploy(chart_version="0.1.0", is_reconciliation=True)
    await harness.settle()

    assert len(harness.fake.calls("upgrade")) == 1
    assert len(harness.hub.statuses()) == 1


async def test_a_users_identical_redeploy_after_delivery_runs(harness: Harness) -> None:
    await harness.deploy(chart_version="0.1.0")
    await harness.settle()
    hub_of(harness).deliver_all()

    await harness.deploy(chart_version="0.1.0", is_reconciliation=False)
    await harness.settle()

    assert len(harness.fake.calls("upgrade")) == 2
    assert len(harness.hub.statuses()) == 2
