"""A re-dispatch of a deploy whose final status is still queued is answered by that status (issue 13/5).

The hub here behaves like HubConnection.report: every report returns a future that settles when the
controller has taken it; the test decides when that happens (the controller is away until then).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from communication_operator.contracts import ServerMethod, WorkloadUndeployedDto

from .doubles import POOL, RELEASE, TENANT, WORKLOAD, Harness, RecordingHub, dto


class OutboxHub(RecordingHub):
    """Reports are queued; their futures settle only when :meth:`deliver_all` runs (controller back)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[asyncio.Future[bool]] = []

    async def report(self, method: ServerMethod, *args: Any) -> asyncio.Future[bool]:  # type: ignore[override]
        await super().report(method, *args)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    def deliver_all(self, delivered: bool = True) -> None:
        for future in self.pending:
            if not future.done():
                future.set_result(delivered)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    h.hub = OutboxHub()
    h.rebuild()
    h.fake.history((1, "deployed"))
    return h


def hub_of(h: Harness) -> OutboxHub:
    assert isinstance(h.hub, OutboxHub)
    return h.hub


async def test_a_redispatch_while_the_final_status_is_queued_runs_no_helm_and_reports_nothing(
    harness: Harness,
) -> None:
    await harness.deploy(chart_version="0.1.0")
    await harness.settle()
    assert len(harness.fake.calls("upgrade")) == 1
    assert len(harness.hub.statuses()) == 1  # queued: the controller is away

    # Reconnect: pools registered first, the controller re-dispatches the still-Pending workload.
    await harness.deploy(chart_version="0.1.0", is_reconciliation=True)
    await harness.settle()

    assert len(harness.fake.calls("upgrade")) == 1
    assert len(harness.hub.statuses()) == 1
    assert harness.hub.progress() == []


async def test_a_redispatch_after_the_status_was_delivered_runs_again(harness: Harness) -> None:
    await harness.deploy(chart_version="0.1.0")
    await harness.settle()
    hub_of(harness).deliver_all()  # delivered on an earlier connection; the controller may have lost it
    await harness.service.connection_opened()

    await harness.deploy(chart_version="0.1.0", is_reconciliation=True)
    await harness.settle()

    assert len(harness.fake.calls("upgrade")) == 2
    assert len(harness.hub.statuses()) == 2


async def test_a_status_the_controller_refused_answers_nothing(harness: Harness) -> None:
    await harness.deploy(chart_version="0.1.0")
    await harness.settle()
    hub_of(harness).deliver_all(delivered=False)

    await harness.deploy(chart_version="0.1.0", is_reconciliation=True)
    await harness.settle()

    assert len(harness.fake.calls("upgrade")) == 2


async def test_a_different_deploy_while_the_status_is_queued_runs(harness: Harness) -> None:
    await harness.deploy(chart_version="0.1.0")
    await harness.settle()

    await harness.deploy(chart_version="0.2.0")
    await harness.settle()
    # ... and the first content again is a change back, not a re-dispatch of the queued one.
    await harness.deploy(chart_version="0.1.0")
    await harness.settle()

    assert [("0.2.0" in c.argv, "0.1.0" in c.argv) for c in harness.fake.calls("upgrade")] == [
        (False, True),
        (True, False),
        (False, True),
    ]
    assert len(harness.hub.statuses()) == 3


async def test_an_undeploy_in_between_makes_an_identical_deploy_run(harness: Harness) -> None:
    await harness.deploy(chart_version="0.1.0")
    await harness.settle()
    await harness.service.on_workload_undeployed(
        WorkloadUndeployedDto(tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="x")
    )
    await harness.settle()

    await harness.deploy(chart_version="0.1.0")
    await harness.settle()

    assert len(harness.fake.calls("upgrade")) == 2
    assert len(harness.hub.statuses()) == 2


async def test_a_queued_refusal_answers_the_redispatch_of_the_same_invalid_workload(harness: Harness) -> None:
    await harness.deploy(repository_url="ftp://charts.example/x")
    await harness.settle()
    await harness.deploy(repository_url="ftp://charts.example/x", is_reconciliation=True)
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.success is False
    assert harness.fake.calls() == []
    assert dto().workload_rt_id == WORKLOAD


async def test_the_watcher_is_stopped_even_when_the_deploy_is_cancelled_twice(tmp_path: Path) -> None:
    # kopf cancels every task on its loop at shutdown, on top of our own cancellation: the watcher of a
    # deploy cancelled twice must still stop, or it keeps reporting progress after the final status.
    h = Harness(tmp_path, kill_grace=1.0)
    h.fake.history((1, "deployed"))
    h.fake.set("upgrade", sleep=30, ignore_term=True)
    await h.deploy()
    await until(lambda: h.fake.calls("upgrade"))
    run = h.service.scheduler.current(RELEASE)
    assert run is not None

    run.task.cancel()
    await asyncio.sleep(0.2)  # helm got SIGTERM and ignores it; the deploy waits for it to stop
    run.task.cancel()
    await asyncio.gather(run.task, return_exceptions=True)

    assert h.watchers[0].stopped


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
