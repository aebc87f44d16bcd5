"""Step report: statuses and progress redacted then bounded, the final status remembered until
delivered, and the success text naming the deployed revision."""

from __future__ import annotations

import pytest

from communication_operator.workloads.delivery import UndeliveredStatuses
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.steps.report import Reporter, operator_failure, success_message

from ..doubles import RELEASE, RecordingHub, ScriptedHelm, dto


async def test_a_status_is_redacted_before_it_is_bounded() -> None:
    hub = RecordingHub()
    reporter = Reporter(hub, 60, UndeliveredStatuses())
    secret = "s3cret-value-0042"

    # The secret straddles where the cut falls: cut first, and its head would survive.
    await reporter.status(dto(), False, "a" * 10 + secret + "b" * 70, {secret})

    (status,) = hub.statuses()
    assert status.success is False
    assert status.status_message is not None
    assert len(status.status_message) <= 60
    fragments = {secret[i : i + 4] for i in range(len(secret) - 3)}
    assert not [fragment for fragment in fragments if fragment in status.status_message]


async def test_progress_goes_out_redacted() -> None:
    hub = RecordingHub()
    reporter = Reporter(hub, 4000, UndeliveredStatuses())

    await reporter.progress(dto(), "pulling with token tok-123456", {"tok-123456"})

    (progress,) = hub.progress()
    assert progress.message == "pulling with token ***"


async def test_the_success_text_names_the_deployed_revision_and_chart_version() -> None:
    helm = ScriptedHelm()
    helm.histories = [[{"revision": 7, "chart": "web-0.4.2", "status": "deployed"}]]

    assert await success_message(helm, RELEASE, "octo", "web", None) == "Deployed revision 7 of web 0.4.2"


@pytest.mark.parametrize("failure", [HelmError("history", 1, "Error: boom"), ValueError("not JSON")])
async def test_an_unreadable_history_gives_a_plainer_success_text(failure: HelmError | ValueError) -> None:
    helm = ScriptedHelm()
    helm.failures["history"] = failure

    assert await success_message(helm, RELEASE, "octo", "web", "1.0.0") == "Deployed web 1.0.0"
    assert await success_message(helm, RELEASE, "octo", "web", None) == "Deployed web"


def test_a_bug_is_reported_with_its_type() -> None:
    assert operator_failure(KeyError("x")) == "Deploy failed in the operator: KeyError: 'x'"
