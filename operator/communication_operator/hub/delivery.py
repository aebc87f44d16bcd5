"""The outbox task of a hub connection: queued reports delivered in order while it is ready.

:class:`~communication_operator.hub.connection.HubConnection` queues a report here and shares its
"ready" event; the task sends the oldest report through the connection's ``invoke`` and settles its
future when it leaves the outbox (True delivered, False refused or dropped). Transport trouble keeps
the report at the head until the connection is back; a report that can never be delivered is dropped
with one log line and a metric, and later reports go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from communication_operator.contracts import ServerMethod
from communication_operator.hub.dispatch import HubStats
from communication_operator.hub.errors import (
    HubConnectionError,
    HubError,
    MessageNotEncodable,
    MessageTooLarge,
)
from communication_operator.hub.outbox import Outbox, Report, ReportFitter, make_report, report_subject
from communication_operator.metrics import DropReason, OperatorMetrics
from communication_operator.redaction import redact_and_bound

log = logging.getLogger(__name__)

REPORT_DROPPED = "dropping %s (%s), which can never be delivered: %s; later reports go on"
#: Characters of a dropped report's error in its log line (redacted, then cut).
DROP_ERROR_LIMIT = 500

#: Seconds between a delivery that failed for transport trouble and the next try (at least).
RETRY_PAUSE = 0.05

#: Sends one hub invocation (the connection's ``invoke``).
Invoke = Callable[..., Awaitable[Any]]
#: The ``closed`` future of the current session, or None between sessions.
SessionClosed = Callable[[], "asyncio.Future[Any] | None"]


class ReportDelivery:
    """The outbox of one connection and the task (:meth:`run`) that drains it in order."""

    def __init__(
        self,
        invoke: Invoke,
        ready: asyncio.Event,
        session_closed: SessionClosed,
        stats: HubStats,
        metrics: OperatorMetrics | None = None,
        *,
        outbox_limit: int = 10_000,
        max_message_bytes: int = 32 * 1024,
    ) -> None:
        self._invoke = invoke
        self._ready = ready
        self._session_closed = session_closed
        self._stats = stats
        self._metrics = metrics
        self._outbox = Outbox(outbox_limit)
        self._fitter = ReportFitter(max_message_bytes)
        self._changed = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._rejected_logged: set[str] = set()

    def __len__(self) -> int:
        return len(self._outbox)

    def queue(self, method: ServerMethod, args: tuple[Any, ...]) -> asyncio.Future[bool]:
        """Queue a report (fitted to the message limit); its future settles when it leaves the outbox."""
        report = make_report(method, *self._fitter.fit(method, args))
        report.settled = asyncio.get_running_loop().create_future()
        self._outbox.put(report)
        self._publish_depth()
        self._empty.clear()
        self._changed.set()
        return report.settled

    def wake(self) -> None:
        """The connection became ready: look at the outbox again."""
        self._changed.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()

    async def run(self) -> None:
        """Deliver reports, oldest first, whenever the connection is ready; never returns."""
        while True:
            report = self._outbox.peek()
            if report is None or not self._ready.is_set():
                self._changed.clear()
                await self._changed.wait()
                continue
            outcome = await self._deliver(report)
            if outcome is not None:
                report.settle(outcome)
                self._outbox.done(report)
                self._publish_depth()
                if not len(self._outbox):
                    self._empty.set()
            else:
                # Transport trouble: wait for the supervisor to reconnect before trying again.
                await self._wait_until_reconnected()

    async def _deliver(self, report: Report) -> bool | None:
        """True when delivered, False when refused for good, None when it must be tried again."""
        try:
            await self._invoke(report.method, *report.arguments)
        except HubError as exc:
            self._stats.reports_rejected += 1
            if report.method not in self._rejected_logged:
                # An older controller may not know a report method; say so once, not per report.
                self._rejected_logged.add(report.method)
                log.warning(
                    "the controller refused %s: %s (further refusals are logged at debug)",
                    report.method,
                    exc.hub_message,
                )
            else:
                log.debug("the controller refused %s: %s", report.method, exc.hub_message)
            return False
        except (MessageTooLarge, MessageNotEncodable) as exc:
            reason = DropReason.TOO_LARGE if isinstance(exc, MessageTooLarge) else DropReason.UNENCODABLE
            self._drop(report, reason, str(exc))
            return False
        except HubConnectionError:
            return None
        except Exception as exc:
            # A bug on our side with this one report must not stop every later one (the outbox task
            # would end and the connection would still look healthy).
            self._drop(report, DropReason.FAILED, f"{type(exc).__name__}: {exc}", exc)
            return False
        self._stats.reports_delivered += 1
        return True

    def _drop(self, report: Report, reason: str, error: str, exc: BaseException | None = None) -> None:
        self._stats.reports_rejected += 1
        log.error(
            REPORT_DROPPED,
            report.method,
            report_subject(report),
            redact_and_bound(error, DROP_ERROR_LIMIT, keep_end=False),
            exc_info=exc,
        )
        if self._metrics is not None:
            self._metrics.record_report_dropped(report.method, reason)

    async def _wait_until_reconnected(self) -> None:
        """After a failed delivery: wait for this session to end (or a short pause if it lives on)."""
        closed = self._session_closed()
        if closed is not None and not closed.done() and self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(closed)
        # Always suspend: a session that has closed while "ready" is still set (the supervisor has not
        # run yet) fails each try at once, and awaiting a done future or a set event does not yield,
        # so without this pause the loop would spin here and the supervisor would never run.
        await asyncio.sleep(RETRY_PAUSE)
        await self._ready.wait()

    def _publish_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.set_outbox_depth(len(self._outbox))
