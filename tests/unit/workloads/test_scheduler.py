"""ReleaseScheduler with plain coroutines: order, newest wins, undeploys and scales never cancelled,
the concurrency bound and shutdown. No helm, no DTOs: an action is any coroutine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from communication_operator.workloads.scheduler import (
    CANCELLED_BY_UNDEPLOY,
    SHUTDOWN,
    SUPERSEDED_BY_DEPLOY,
    ReleaseScheduler,
    settle,
)


class Journal:
    """Actions that record when they start, finish, are cancelled and have stopped."""

    def __init__(self, scheduler: ReleaseScheduler) -> None:
        self.scheduler = scheduler
        self.events: list[str] = []
        self.reasons: dict[str, str] = {}
        self.started: dict[str, asyncio.Event] = {}

    def action(
        self, name: str, *, release: str = "r", seconds: float = 30.0, stop_seconds: float = 0.0
    ) -> Callable[[], Awaitable[None]]:
        """Runs ``seconds``; when cancelled takes ``stop_seconds`` to stop (like helm after SIGTERM)."""
        self.started[name] = asyncio.Event()

        async def work() -> None:
            self.events.append(f"start {name}")
            self.started[name].set()
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                self.reasons[name] = self.scheduler.cancel_reason(release)
                self.events.append(f"cancelled {name}")
                await asyncio.shield(asyncio.sleep(stop_seconds))
                self.events.append(f"stopped {name}")
                raise
            self.events.append(f"end {name}")

        return work


@pytest.fixture
def scheduler() -> ReleaseScheduler:
    return ReleaseScheduler(max_concurrent=4)


@pytest.fixture
def journal(scheduler: ReleaseScheduler) -> Journal:
    return Journal(scheduler)


async def idle(scheduler: ReleaseScheduler) -> None:
    async with asyncio.timeout(10):
        await scheduler.wait_idle()


async def test_a_newer_deploy_cancels_the_older_and_starts_after_it_has_stopped(
    scheduler: ReleaseScheduler, journal: Journal
) -> None:
    scheduler.schedule("r", "deploy", journal.action("d1", stop_seconds=0.2))
    await journal.started["d1"].wait()
    scheduler.schedule("r", "deploy", journal.action("d2", seconds=0))
    await idle(scheduler)

    assert journal.events == ["start d1", "cancelled d1", "stopped d1", "start d2", "end d2"]
    assert journal.reasons == {"d1": SUPERSEDED_BY_DEPLOY}


async def test_an_undeploy_cancels_a_deploy_but_is_never_cancelled_itself(
    scheduler: ReleaseScheduler, journal: Journal
) -> None:
    scheduler.schedule("r", "deploy", journal.action("deploy"))
    await journal.started["deploy"].wait()
    scheduler.schedule("r", "undeploy", journal.action("undeploy", seconds=0.2))
    await journal.started["undeploy"].wait()
    scheduler.schedule("r", "deploy", journal.action("redeploy", seconds=0))
    await idle(scheduler)

    assert journal.events == [
        "start deploy",
        "cancelled deploy",
        "stopped deploy",
        "start undeploy",
        "end undeploy",
        "start redeploy",
        "end redeploy",
    ]
    assert journal.reasons == {"deploy": CANCELLED_BY_UNDEPLOY}


async def test_a_scale_waits_for_earlier_actions_and_a_newer_deploy_does_not_cancel_it(
    scheduler: ReleaseScheduler, journal: Journal
) -> None:
    scheduler.schedule("r", "deploy", journal.action("d1", stop_seconds=0.1))
    await journal.started["d1"].wait()
    scheduler.schedule("r", "scale", journal.action("scale", seconds=0))
    # The newer deploy cancels the deploy the scale was queued behind, never the scale.
    scheduler.schedule("r", "deploy", journal.action("d2", seconds=0))
    await idle(scheduler)

    assert journal.events == [
        "start d1",
        "cancelled d1",
        "stopped d1",
        "start scale",
        "end scale",
        "start d2",
        "end d2",
    ]


async def test_a_queued_action_cancelled_early_does_not_let_its_successor_overtake_the_running_one(
    scheduler: ReleaseScheduler, journal: Journal
) -> None:
    scheduler.schedule("r", "deploy", journal.action("d1", stop_seconds=0.3))
    await journal.started["d1"].wait()
    scheduler.schedule("r", "deploy", journal.action("d2"))  # queued, cancelled at once by d3
    scheduler.schedule("r", "deploy", journal.action("d3", seconds=0))
    await idle(scheduler)

    assert journal.events == ["start d1", "cancelled d1", "stopped d1", "start d3", "end d3"]


async def test_releases_are_independent_and_the_slots_bound_how_many_run_at_once() -> None:
    in_use: list[int] = []
    scheduler = ReleaseScheduler(max_concurrent=2, on_slot_change=in_use.append)
    running = 0
    peak = 0

    async def hold_a_slot() -> None:
        nonlocal running, peak
        async with scheduler.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.05)
            running -= 1

    for index in range(5):
        scheduler.schedule(f"r{index}", "deploy", hold_a_slot)
    assert scheduler.busy_releases() == ["r0", "r1", "r2", "r3", "r4"]
    await idle(scheduler)

    assert peak == 2
    assert scheduler.peak_running == 2
    assert max(in_use) == 2
    assert in_use[-1] == 0
    assert scheduler.busy_releases() == []


async def test_shutdown_cancels_every_action_waits_for_them_and_refuses_new_ones(
    scheduler: ReleaseScheduler, journal: Journal
) -> None:
    scheduler.schedule("a", "deploy", journal.action("a", release="a", stop_seconds=0.1))
    scheduler.schedule("b", "undeploy", journal.action("b", release="b", stop_seconds=0.1))
    await journal.started["a"].wait()
    await journal.started["b"].wait()

    await scheduler.shutdown()

    assert sorted(journal.events) == sorted(
        ["start a", "start b", "cancelled a", "stopped a", "cancelled b", "stopped b"]
    )
    assert journal.reasons == {"a": SHUTDOWN, "b": SHUTDOWN}
    assert scheduler.closing
    assert scheduler.busy_releases() == []
    assert scheduler.schedule("a", "deploy", journal.action("late")) is False
    assert scheduler.schedule("a", "scale", journal.action("late scale")) is False
    assert "start late" not in journal.events


async def test_the_current_action_carries_its_payload_until_it_finishes(scheduler: ReleaseScheduler) -> None:
    release_it = asyncio.Event()

    async def work() -> None:
        await release_it.wait()

    scheduler.schedule("r", "deploy", work, payload={"chart": "web"})
    current = scheduler.current("r")
    assert current is not None
    assert (current.kind, current.payload, current.running) == ("deploy", {"chart": "web"}, True)

    release_it.set()
    await idle(scheduler)
    assert scheduler.current("r") is None


async def test_a_crashed_action_is_logged_and_does_not_block_the_release(
    scheduler: ReleaseScheduler, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    async def crash() -> None:
        raise RuntimeError("bug")

    scheduler.schedule("r", "deploy", crash, context={"release": "r"})
    scheduler.schedule("r", "scale", journal.action("scale", seconds=0))
    await idle(scheduler)

    assert journal.events == ["start scale", "end scale"]
    crashed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in crashed] == ["deploy of release r crashed"]


async def test_settle_waits_for_the_task_through_its_own_cancellation() -> None:
    stopped = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.shield(asyncio.sleep(0.2))
            stopped.set()

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    task.cancel()
    waiter = asyncio.create_task(settle(task))
    await asyncio.sleep(0.05)
    waiter.cancel()  # cancelled while waiting: still waits for the task, then re-raises
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert stopped.is_set()
