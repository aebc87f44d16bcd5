"""The diagnostics lines, written from octo-spec §4.11's formats (upstream WorkloadDiagnosticsCollector),
and the failed-status composition (``\\n\\nPod diagnostics:\\n``, the 4,000-character bound)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from communication_operator.workloads.diagnostics import (
    diagnostic_lines,
    event_line,
    fit_lines,
    pod_lines,
    redact_api_object,
    with_diagnostics,
)

from .kube_objects import POD, RELEASE, REPLICASET, container, event, pod

SINCE = datetime.fromisoformat("2026-05-01T10:00:10Z")


def test_waiting_line() -> None:
    p = pod(containers=[container(waiting=("ImagePullBackOff", 'Back-off pulling image "x/y:1"'))])
    assert pod_lines(p) == [
        f"Pod {POD} container 'web' waiting: ImagePullBackOff — Back-off pulling image \"x/y:1\""
    ]


def test_waiting_without_message_has_no_dash() -> None:
    p = pod(containers=[container(waiting=("CrashLoopBackOff", ""))])
    assert pod_lines(p) == [f"Pod {POD} container 'web' waiting: CrashLoopBackOff"]


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_benign_waiting_reasons_are_left_out(reason: str) -> None:
    assert pod_lines(pod(containers=[container(waiting=(reason, "starting"))])) == []


def test_crash_loop_gives_the_waiting_and_the_previous_termination() -> None:
    status = container(waiting=("CrashLoopBackOff", "back-off 40s restarting failed container"), restarts=4)
    status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "message": "panic: no config\n"}}
    assert pod_lines(pod(containers=[status])) == [
        f"Pod {POD} container 'web' waiting: CrashLoopBackOff — back-off 40s restarting failed container",
        f"Pod {POD} container 'web' previously terminated: exit code 1 (Error) — panic: no config",
    ]


def test_a_container_running_again_after_oom_is_reported() -> None:
    status = container(running=True, ready=True, restarts=1, last_terminated=(137, "OOMKilled"))
    assert pod_lines(pod(containers=[status])) == [
        f"Pod {POD} container 'web' previously terminated: exit code 137 (OOMKilled)"
    ]


def test_exit_code_zero_gives_nothing() -> None:
    status = container(running=True, last_terminated=(0, "Completed"), terminated=None)
    assert pod_lines(pod(containers=[status])) == []
    assert pod_lines(pod(containers=[container(terminated=(0, "Completed"))])) == []


def test_a_blank_reason_omits_the_parentheses() -> None:
    status = container(running=True)
    status["lastState"] = {"terminated": {"exitCode": 2, "reason": "  ", "message": "bad flag"}}
    assert pod_lines(pod(containers=[status])) == [
        f"Pod {POD} container 'web' previously terminated: exit code 2 — bad flag"
    ]


def test_init_container_lines_follow_the_regular_ones_of_the_same_pod() -> None:
    p = pod(
        init_containers=[container("migrate", running=True, last_terminated=(3, "Error"))],
        containers=[container("web", waiting=("PodInitializing", "")), container("side", waiting=("X", "m"))],
    )
    assert pod_lines(p) == [
        f"Pod {POD} container 'side' waiting: X — m",
        f"Pod {POD} initContainer 'migrate' previously terminated: exit code 3 (Error)",
    ]


def test_a_stopped_container_that_is_not_restarted_is_reported_unless_the_pod_is_deleted() -> None:
    status = container(terminated=(1, "Error"), message="job failed")
    assert pod_lines(pod(containers=[status])) == [
        f"Pod {POD} container 'web' terminated: exit code 1 (Error) — job failed"
    ]
    assert pod_lines(pod(containers=[status], deleting=True)) == []


def test_trailing_whitespace_is_trimmed_and_a_message_stays_on_one_line() -> None:
    p = pod(containers=[container(waiting=("CreateContainerConfigError", 'secret "a"\n  not found \t\n'))])
    assert pod_lines(p) == [
        f"Pod {POD} container 'web' waiting: CreateContainerConfigError — secret \"a\" not found"
    ]


def test_event_line() -> None:
    e = event(reason="FailedCreate", message="pods is forbidden: quota\n", kind="ReplicaSet", name=REPLICASET)
    assert event_line(e) == f"Event ReplicaSet/{REPLICASET}: FailedCreate — pods is forbidden: quota"


def test_event_line_with_missing_kind_and_reason() -> None:
    e = event(reason="x", message="m")
    del e["involvedObject"]["kind"]
    del e["reason"]
    assert event_line(e) == f"Event <unknown>/{POD}: <no-reason> — m"


@pytest.mark.parametrize("message", ["", "  \n\t"])
def test_an_empty_message_omits_the_dash_on_pod_and_event_lines_alike(message: str) -> None:
    # octo-spec §4.11 gives `<...> — <message>` and is silent on an empty message; upstream omits
    # ` — ` on pod lines only. One rule for both (decision 0002): no dash without a message.
    waiting = container("web", waiting=("CrashLoopBackOff", message))
    waiting["lastState"] = {"terminated": {"exitCode": 1, "reason": "", "message": message}}
    stopped = container("job", terminated=(2, "Error"), message=message)
    assert pod_lines(pod(containers=[waiting, stopped])) == [
        f"Pod {POD} container 'web' waiting: CrashLoopBackOff",
        f"Pod {POD} container 'web' previously terminated: exit code 1",
        f"Pod {POD} container 'job' terminated: exit code 2 (Error)",
    ]
    assert event_line(event(reason="Unhealthy", message=message)) == f"Event Pod/{POD}: Unhealthy"
    nameless = event(reason="", message=message)
    del nameless["involvedObject"]["kind"]
    assert event_line(nameless) == f"Event <unknown>/{POD}: <no-reason>"
    # The watcher's path: objects redacted as they arrive, then formatted as they are.
    objects = [redact_api_object(o, ["s3cret"]) for o in (pod(containers=[waiting]), nameless)]
    assert _lines([objects[0]], [objects[1]], redacted=True) == [
        f"Pod {POD} container 'web' waiting: CrashLoopBackOff",
        f"Pod {POD} container 'web' previously terminated: exit code 1",
        f"Event <unknown>/{POD}: <no-reason>",
    ]


def test_normal_events_and_events_without_a_name_give_no_line() -> None:
    assert event_line(event(reason="Pulled", message="ok", event_type="Normal")) is None
    nameless = event(reason="X", message="m")
    nameless["involvedObject"]["name"] = ""
    assert event_line(nameless) is None


def _lines(pods: Any, events: Any, **kwargs: Any) -> list[str]:
    return diagnostic_lines(pods, events, release=RELEASE, since=SINCE, **kwargs)


def test_pod_lines_come_first_then_each_distinct_event_once() -> None:
    pods = [
        pod(name=f"{RELEASE}-b", containers=[container(waiting=("ErrImagePull", "not found"))]),
        pod(name=f"{RELEASE}-a", containers=[container(waiting=("ImagePullBackOff", "back-off"))]),
    ]
    warning = event(reason="Failed", message="Failed to pull image", name=f"{RELEASE}-a")
    repeated = {**warning, "metadata": {**warning["metadata"], "uid": "other"}}
    scheduling = event(reason="FailedScheduling", message="0/1 nodes", name=f"{RELEASE}-b")
    scheduling["firstTimestamp"] = "2026-05-01T09:59:59Z"  # events in order of first occurrence
    assert _lines(pods, [scheduling, warning, repeated]) == [
        f"Pod {RELEASE}-a container 'web' waiting: ImagePullBackOff — back-off",
        f"Pod {RELEASE}-b container 'web' waiting: ErrImagePull — not found",
        f"Event Pod/{RELEASE}-b: FailedScheduling — 0/1 nodes",
        f"Event Pod/{RELEASE}-a: Failed — Failed to pull image",
    ]


def test_events_of_other_releases_and_before_the_deploy_are_left_out() -> None:
    other = event(reason="BackOff", message="m", name="acme-650000000000000000000999-x")
    stale = event(reason="BackOff", message="old", last="2026-05-01T09:59:00Z")
    current = event(reason="BackOff", message="new")
    assert _lines([], [other, stale, current]) == [f"Event Pod/{POD}: BackOff — new"]


def test_a_failed_query_leaves_its_part_out() -> None:
    p = pod(containers=[container(waiting=("ErrImagePull", "x"))])
    e = event(reason="Failed", message="y")
    assert _lines(None, [e]) == [f"Event Pod/{POD}: Failed — y"]
    assert _lines([p], None) == [f"Pod {POD} container 'web' waiting: ErrImagePull — x"]
    assert _lines(None, None) == []


def test_the_failed_status_is_the_helm_line_alone_without_findings() -> None:
    assert (
        with_diagnostics("helm upgrade --install r failed", "", limit=4000)
        == "helm upgrade --install r failed"
    )


def test_the_failed_status_appends_the_lines_after_the_header() -> None:
    assert with_diagnostics("helm x failed", "Pod a container 'b' waiting: C", limit=4000) == (
        "helm x failed\n\nPod diagnostics:\nPod a container 'b' waiting: C"
    )


def test_progress_lines_are_bounded_with_a_count_of_the_rest() -> None:
    lines = [f"line {i} " + "x" * 50 for i in range(100)]
    text = fit_lines(lines, 1000)
    assert len(text) <= 1000
    shown = text.split("\n")
    assert shown[:-1] == lines[: len(shown) - 1]
    assert shown[-1] == f"... and {100 - (len(shown) - 1)} more"


def test_redacted_objects_carry_no_secret_and_keep_their_shape() -> None:
    secret = "pass phrase\twith  tabs"
    p = pod(containers=[container(waiting=("CreateContainerConfigError", f"bad value {secret}!"))])
    redacted = redact_api_object(p, [secret])
    assert secret not in repr(redacted)
    assert redacted["status"]["containerStatuses"][0]["state"]["waiting"] == {
        "reason": "CreateContainerConfigError",
        "message": "bad value ***!",
    }
    assert redacted["metadata"]["name"] == POD
