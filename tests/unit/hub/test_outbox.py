"""The outbox keeps terminal reports, coalesces progress, and stays bounded."""

from __future__ import annotations

import asyncio
import logging

import pytest

from communication_operator.contracts import (
    ServerMethod,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
)
from communication_operator.hub.outbox import Outbox, make_report


def progress(workload: str, message: str) -> WorkloadDeploymentProgressDto:
    return WorkloadDeploymentProgressDto(tenant_id="t", workload_rt_id=workload, message=message)


def status(workload: str, success: bool = True) -> WorkloadDeploymentStatusDto:
    return WorkloadDeploymentStatusDto(tenant_id="t", workload_rt_id=workload, success=success)


PROGRESS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS


def drain(outbox: Outbox) -> list[object]:
    delivered = []
    while (report := outbox.peek()) is not None:
        delivered.append(report.arguments[0])
        outbox.done(report)
    return delivered


def test_delivers_in_order() -> None:
    outbox = Outbox()
    items = [status(f"w{i}") for i in range(100)]
    for item in items:
        outbox.put(make_report(STATUS, item))
    assert drain(outbox) == items


def test_progress_for_the_same_workload_is_coalesced_to_the_latest() -> None:
    outbox = Outbox()
    outbox.put(make_report(PROGRESS, progress("a", "1")))
    outbox.put(make_report(PROGRESS, progress("b", "1")))
    outbox.put(make_report(PROGRESS, progress("a", "2")))
    assert drain(outbox) == [progress("a", "2"), progress("b", "1")]


def test_progress_never_jumps_over_a_terminal_status() -> None:
    outbox = Outbox()
    outbox.put(make_report(PROGRESS, progress("a", "old deploy")))
    outbox.put(make_report(STATUS, status("a", success=False)))
    outbox.put(make_report(PROGRESS, progress("a", "new deploy")))
    assert drain(outbox) == [progress("a", "old deploy"), status("a", False), progress("a", "new deploy")]


def test_the_report_in_flight_is_not_replaced() -> None:
    outbox = Outbox()
    outbox.put(make_report(PROGRESS, progress("a", "1")))
    in_flight = outbox.peek()
    outbox.put(make_report(PROGRESS, progress("a", "2")))
    assert in_flight is not None
    outbox.done(in_flight)
    assert drain(outbox) == [progress("a", "2")]


def test_overflow_drops_the_oldest_progress_and_keeps_terminal_reports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = Outbox(limit=3)
    outbox.put(make_report(STATUS, status("s1")))
    outbox.put(make_report(PROGRESS, progress("a", "1")))
    outbox.put(make_report(STATUS, status("s2")))
    with caplog.at_level(logging.WARNING):
        outbox.put(make_report(STATUS, status("s3")))
    assert "dropped the oldest progress report of workload a" in caplog.text
    assert drain(outbox) == [status("s1"), status("s2"), status("s3")]
    assert outbox.dropped_progress == 1


def test_terminal_reports_are_kept_beyond_the_limit_with_one_error(caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(limit=2)
    with caplog.at_level(logging.ERROR):
        for i in range(5):
            outbox.put(make_report(STATUS, status(f"s{i}")))
    assert len(outbox) == 5
    assert sum("undelivered terminal reports" in r.message for r in caplog.records) == 1


async def test_a_replaced_progress_report_settles_as_not_delivered() -> None:
    loop = asyncio.get_running_loop()
    outbox = Outbox()
    first = make_report(PROGRESS, progress("a", "1"))
    first.settled = loop.create_future()
    outbox.put(first)
    outbox.put(make_report(PROGRESS, progress("a", "2")))
    assert first.settled.done()
    assert first.settled.result() is False
