"""The outbox task on its own: a plain coroutine for the controller, an event for the connection's state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from communication_operator.contracts import ServerMethod
from communication_operator.hub.delivery import ReportDelivery
from communication_operator.hub.dispatch import HubStats
from communication_operator.hub.errors import HubError, NotConnected

TENANT = "acme"


@dataclass
class Controller:
    """Records each invocation; ``failures[pool]`` is raised (once) for the next report of that pool."""

    received: list[str] = field(default_factory=list)
    failures: dict[str, BaseException] = field(default_factory=dict)

    async def invoke(self, method: ServerMethod, *args: Any) -> None:
        pool = args[1]
        self.received.append(pool)
        failure = self.failures.pop(pool, None)
        if failure is not None:
            raise failure


@dataclass
class Connection:
    controller: Controller = field(default_factory=Controller)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Future[Any] | None = None
    stats: HubStats = field(default_factory=HubStats)
    delivery: ReportDelivery = field(init=False)

    def __post_init__(self) -> None:
        self.delivery = ReportDelivery(self.controller.invoke, self.ready, lambda: self.closed, self.stats)

    def connect(self) -> None:
        self.closed = asyncio.get_running_loop().create_future()
        self.ready.set()
        self.delivery.wake()

    def disconnect(self) -> None:
        self.ready.clear()
        if self.closed is not None:
            self.closed.set_result(None)
        self.closed = None

    def queue(self, pool: str) -> asyncio.Future[bool]:
        return self.delivery.queue(ServerMethod.REGISTER_POOL, (TENANT, pool))


@pytest.fixture
async def connection() -> AsyncIterator[Connection]:
    connection = Connection()
    task = asyncio.create_task(connection.delivery.run())
    yield connection
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def settled(*futures: asyncio.Future[bool]) -> list[bool]:
    async with asyncio.timeout(5):
        return list(await asyncio.gather(*futures))


async def test_reports_wait_for_the_connection_then_go_out_in_order(connection: Connection) -> None:
    futures = [connection.queue(pool) for pool in ("p1", "p2", "p3")]
    await asyncio.sleep(0.01)
    assert connection.controller.received == []
    assert len(connection.delivery) == 3

    connection.connect()

    assert await settled(*futures) == [True, True, True]
    assert connection.controller.received == ["p1", "p2", "p3"]
    assert len(connection.delivery) == 0
    async with asyncio.timeout(1):
        await connection.delivery.wait_empty()
    assert connection.stats.reports_delivered == 3


async def test_a_refused_report_settles_false_and_later_reports_go_on(
    connection: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    connection.controller.failures = {
        "p1": HubError("RegisterPoolAsync", "HubException: unknown pool"),
        "p2": HubError("RegisterPoolAsync", "HubException: unknown pool"),
    }
    connection.connect()

    with caplog.at_level(logging.DEBUG, logger="communication_operator.hub.delivery"):
        assert await settled(connection.queue("p1"), connection.queue("p2"), connection.queue("p3")) == [
            False,
            False,
            True,
        ]

    assert connection.stats.reports_rejected == 2
    refusals = [r for r in caplog.records if "the controller refused" in r.getMessage()]
    # Said once at WARNING per method, then at debug.
    assert [r.levelno for r in refusals] == [logging.WARNING, logging.DEBUG]


async def test_transport_trouble_keeps_the_report_first_until_the_connection_is_back(
    connection: Connection,
) -> None:
    connection.controller.failures = {"p1": NotConnected("cut off")}
    connection.connect()
    first, second = connection.queue("p1"), connection.queue("p2")
    async with asyncio.timeout(5):
        while connection.controller.received != ["p1"]:
            await asyncio.sleep(0.005)

    connection.disconnect()
    await asyncio.sleep(0.05)
    assert not first.done()
    assert connection.controller.received == ["p1"]

    connection.connect()

    assert await settled(first, second) == [True, True]
    assert connection.controller.received == ["p1", "p1", "p2"]


async def test_a_report_that_breaks_our_side_is_dropped_with_one_log_line(
    connection: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    connection.controller.failures = {"p1": ValueError("a bug of ours")}
    connection.connect()

    with caplog.at_level(logging.ERROR, logger="communication_operator.hub.delivery"):
        assert await settled(connection.queue("p1"), connection.queue("p2")) == [False, True]

    (record,) = caplog.records
    assert record.getMessage().startswith("dropping RegisterPoolAsync")
    assert "ValueError: a bug of ours" in record.getMessage()


@dataclass
class DownController(Controller):
    """Fails every invocation at once, without suspending, as a closed session does."""

    down: bool = True

    async def invoke(self, method: ServerMethod, *args: Any) -> None:
        self.received.append(args[1])
        if self.down:
            raise NotConnected(f"{method}: connection lost before the controller answered")


@pytest.mark.timeout(20)  # a starved loop never ends this test; the timeout's signal does
async def test_a_closed_session_still_marked_ready_does_not_starve_the_loop() -> None:
    """The session has closed, but the supervisor has not yet run to clear "ready", and every try
    fails without suspending. The outbox task must yield between tries: it once did not, and an
    operator's event loop spun in the outbox for good (stop() hung, memory grew with each try)."""
    controller = DownController()
    connection = Connection(controller=controller)
    task = asyncio.create_task(connection.delivery.run())
    try:
        connection.connect()
        assert connection.closed is not None
        connection.closed.set_result(None)  # closed; "ready" still set
        future = connection.queue("p1")

        await asyncio.sleep(0.3)  # returns only if the outbox task lets the loop run
        assert 1 <= len(controller.received) <= 0.3 / 0.05 + 2, len(controller.received)

        connection.ready.clear()  # the supervisor notices, reconnects
        controller.down = False
        connection.connect()
        assert await settled(future) == [True]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
