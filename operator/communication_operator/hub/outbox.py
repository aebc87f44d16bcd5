"""Reports made while the controller is away, delivered in order once it is back.

Terminal reports (deployment status, scale status, deployed state) are never dropped. Progress
reports are advisory: a newer progress report for the same workload replaces a queued older one, and
when the queue is full the oldest progress report makes room.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from communication_operator.contracts import ServerMethod, WorkloadDeploymentProgressDto
from communication_operator.contracts.bounds import fit_arguments
from communication_operator.hub import protocol
from communication_operator.redaction import redact_and_bound

log = logging.getLogger(__name__)

REPORT_SHORTENED = (
    "%s of workload %r did not fit the controller's %d-byte message limit; sending it with %s shortened "
    "(further ones for this workload are logged at debug)"
)
# Invocation ids are decimal counters; 20 digits cover any this process can reach.
_LONGEST_INVOCATION_ID = "9" * 20
_SHORTENED_LOGGED_LIMIT = 1000

_sequence = count()


@dataclass
class Report:
    method: ServerMethod
    arguments: tuple[Any, ...]
    coalesce_key: tuple[str, str] | None = None  # (tenantId, workloadRtId) of a progress report
    sequence: int = field(default_factory=lambda: next(_sequence))
    # Settled when the report leaves the outbox: True delivered, False refused, replaced or dropped.
    settled: asyncio.Future[bool] | None = field(default=None, compare=False, repr=False)

    def settle(self, delivered: bool) -> None:
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(delivered)

    @property
    def droppable(self) -> bool:
        return self.coalesce_key is not None


class ReportFitter:
    """Bounds report arguments so their invocation fits ``max_message_bytes`` (see contracts.bounds)."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._logged: set[tuple[str, str]] = set()  # (method, workload) already warned about

    def fit(self, method: ServerMethod, arguments: tuple[Any, ...]) -> tuple[Any, ...]:
        envelope = protocol.encode(protocol.invocation(_LONGEST_INVOCATION_ID, str(method), []))
        budget = self.max_message_bytes - len(envelope.encode("utf-8")) + len("[]")
        try:
            fitted = fit_arguments(arguments, budget)
        except Exception:  # a report the encoder rejects: delivery drops it with a log line and a metric
            log.debug("cannot measure %s; queued as it is", method, exc_info=True)
            return arguments
        if fitted.shortened:
            self._log_shortened(method, arguments, fitted.shortened)
        return fitted.arguments

    def _log_shortened(
        self, method: ServerMethod, arguments: tuple[Any, ...], fields: tuple[str, ...]
    ) -> None:
        ids = (getattr(argument, "workload_rt_id", None) for argument in arguments)
        workload = next((rt_id for rt_id in ids if isinstance(rt_id, str)), "")[:64]
        key = (str(method), workload)
        level = logging.DEBUG if key in self._logged else logging.WARNING
        if len(self._logged) >= _SHORTENED_LOGGED_LIMIT:
            self._logged.clear()
        self._logged.add(key)
        log.log(level, REPORT_SHORTENED, method, workload, self.max_message_bytes, ", ".join(fields))


def make_report(method: ServerMethod, *arguments: Any) -> Report:
    key = None
    if method is ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS and arguments:
        progress = arguments[0]
        if isinstance(progress, WorkloadDeploymentProgressDto):
            key = (progress.tenant_id, progress.workload_rt_id)
    return Report(method, arguments, key)


class Outbox:
    """A bounded FIFO of reports; the head stays queued until the caller confirms delivery."""

    def __init__(self, limit: int = 10_000) -> None:
        if limit < 1:
            raise ValueError("outbox limit must be at least 1")
        self.limit = limit
        self._items: deque[Report] = deque()
        self._in_flight: Report | None = None
        self.dropped_progress = 0
        self._over_limit_logged = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, report: Report) -> None:
        if report.coalesce_key is not None and self._replace_queued_progress(report):
            return
        full = len(self._items) >= self.limit
        if full and not self._drop_oldest_progress() and not self._over_limit_logged:
            log.error(
                "report outbox holds %d undelivered terminal reports (limit %d); keeping them all, "
                "none is dropped, but the controller has been unreachable for long",
                len(self._items),
                self.limit,
            )
            self._over_limit_logged = True
        self._items.append(report)

    def peek(self) -> Report | None:
        """The next report to deliver; it stays queued (and is never coalesced away) until ``done``."""
        if not self._items:
            return None
        self._in_flight = self._items[0]
        return self._in_flight

    def done(self, report: Report) -> None:
        if self._items and self._items[0] is report:
            self._items.popleft()
        if self._in_flight is report:
            self._in_flight = None
        if len(self._items) < self.limit:
            self._over_limit_logged = False

    def _replace_queued_progress(self, report: Report) -> bool:
        """Replace the latest queued report of the same workload if it is a progress report.

        Only the latest one counts: a progress report queued before that workload's terminal status
        must stay before it, and a newer one goes after it.
        """
        for index in range(len(self._items) - 1, -1, -1):
            queued = self._items[index]
            if _same_workload(queued, report):
                if queued.coalesce_key == report.coalesce_key and queued is not self._in_flight:
                    report.sequence = queued.sequence
                    self._items[index] = report
                    queued.settle(False)
                    return True
                return False
        return False

    def _drop_oldest_progress(self) -> bool:
        for index, queued in enumerate(self._items):
            if queued.droppable and queued is not self._in_flight:
                del self._items[index]
                queued.settle(False)
                self.dropped_progress += 1
                log.warning(
                    "report outbox full (%d reports): dropped the oldest progress report of workload %s "
                    "(%d dropped so far); terminal reports are kept",
                    self.limit,
                    queued.coalesce_key[1] if queued.coalesce_key else "?",
                    self.dropped_progress,
                )
                return True
        return False


def _same_workload(queued: Report, report: Report) -> bool:
    if report.coalesce_key is None:
        return False
    tenant, workload = report.coalesce_key
    for argument in queued.arguments:
        if (
            getattr(argument, "tenant_id", None) == tenant
            and getattr(argument, "workload_rt_id", None) == workload
        ):
            return True
    return False


def report_subject(report: Report) -> str:
    """Which workload a report is about, for log lines (``-`` for reports about no single workload)."""
    for argument in report.arguments:
        workload = getattr(argument, "workload_rt_id", None)
        if isinstance(workload, str) and workload:
            return f"workload {redact_and_bound(workload, 64, keep_end=False)!r}"
    return "-"
