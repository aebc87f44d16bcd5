"""Texts from outside that reach a log line or a message are redacted first, then cut (one helper).

Each case plants a secret the process knows where the old cut fell: a cut before redaction left the
secret minus its tail, which no known-secret search matches any more.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import aiohttp
import pytest

from communication_operator.contracts import InvalidPush, PushIds, ServerMethod, WorkloadDeploymentProgressDto
from communication_operator.contracts.validation import show
from communication_operator.hub.delivery import DROP_ERROR_LIMIT, ReportDelivery
from communication_operator.hub.dispatch import HubStats
from communication_operator.hub.outbox import Report, report_subject
from communication_operator.hub.protocol import MessageType
from communication_operator.hub.session import CLOSE_ERROR_LIMIT, HubSession, SessionConfig
from communication_operator.redaction import ELLIPSIS, redact_and_bound, remember_secrets
from communication_operator.workloads.refusals import WorkloadPushRefusals

SECRET = "planted-s3cret-straddling-the-cut"


@pytest.fixture(autouse=True)
def _known_secret() -> None:
    remember_secrets([SECRET])


def straddling(limit: int, head: str = "") -> str:
    """A text whose secret starts 10 characters before ``limit`` (counting ``head``), then a long tail."""
    return "a" * (limit - 10 - len(head)) + SECRET + "b" * (10 * limit)


def test_the_helper_keeps_the_start_with_an_ellipsis_or_drops_the_middle() -> None:
    assert redact_and_bound("abcdef", 4, keep_end=False) == "abc" + ELLIPSIS
    assert redact_and_bound("abcdef", 4, keep_end=False, marker="") == "abcd"
    assert redact_and_bound("abcdef", 6, keep_end=False) == "abcdef"
    cut = redact_and_bound(straddling(100), 100, keep_end=False)
    assert len(cut) == 100
    assert SECRET[:6] not in cut
    assert cut.endswith(ELLIPSIS)
    middle = redact_and_bound("x" * 50 + SECRET + "y" * 500, 200, separator=" ")
    assert "characters omitted" in middle
    assert SECRET[:6] not in middle
    assert len(middle) <= 200


async def test_a_close_error_from_the_controller_is_redacted_then_bounded() -> None:
    session = HubSession(
        SessionConfig(url="http://127.0.0.1:9/operatorHub"),
        cast(aiohttp.ClientSession, None),
        cast(aiohttp.ClientWebSocketResponse, None),
        "connection-id",
        lambda target, arguments: None,
    )
    session._handle_message({"type": MessageType.CLOSE, "error": straddling(CLOSE_ERROR_LIMIT)})
    reason = session.closed.result().reason
    assert reason.startswith("the controller closed the connection: aaa")
    assert SECRET[:6] not in reason
    assert len(reason) == len("the controller closed the connection: ") + CLOSE_ERROR_LIMIT


def test_a_dropped_reports_error_is_redacted_then_bounded(caplog: pytest.LogCaptureFixture) -> None:
    async def invoke(*args: Any) -> None:
        return None

    delivery = ReportDelivery(invoke, asyncio.Event(), lambda: None, HubStats())
    report = Report(
        ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS,
        (WorkloadDeploymentProgressDto(tenant_id="acme", workload_rt_id="w" * 24, message="m"),),
    )
    with caplog.at_level(logging.ERROR):
        delivery._drop(report, "failed", straddling(DROP_ERROR_LIMIT, "ValueError: "))
    (record,) = caplog.records
    message = record.getMessage()
    assert "aaa" in message
    assert SECRET[:6] not in message


def test_a_reports_subject_is_redacted_then_bounded() -> None:
    report = Report(
        ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS,
        (WorkloadDeploymentProgressDto(tenant_id="acme", workload_rt_id=straddling(64), message="m"),),
    )
    subject = report_subject(report)
    assert subject.startswith("workload 'aaa")
    assert SECRET[:6] not in subject


def test_a_shown_value_is_redacted_then_cut_with_its_length() -> None:
    value = straddling(40)
    shown = show(value)
    assert SECRET[:6] not in shown
    assert shown.endswith(f"… ({len(value)} characters)")
    assert show(SECRET) == repr("***")
    assert show("shown-unchanged-7f1c") == "'shown-unchanged-7f1c'"


class _Hub:
    def __init__(self) -> None:
        self.reports: list[tuple[Any, ...]] = []

    async def report(self, method: ServerMethod, *args: Any) -> asyncio.Future[bool] | None:
        self.reports.append((method, *args))
        return None


async def test_a_refusals_log_context_is_redacted_then_cut(caplog: pytest.LogCaptureFixture) -> None:
    refused = InvalidPush(
        "WorkloadUndeployed",
        ["workloadRtId is not a runtime id"],
        PushIds(tenant_id=straddling(64), workload_rt_id="w" * 24),
    )
    with caplog.at_level(logging.ERROR):
        await WorkloadPushRefusals(_Hub()).undeploy_refused(refused)
    (record,) = caplog.records
    tenant = record.tenant  # type: ignore[attr-defined]
    assert tenant.startswith("aaa")
    assert len(tenant) == 64
    assert SECRET[:6] not in tenant
