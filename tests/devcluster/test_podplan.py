"""Unit tests: the statuses and events the fake kubelet plans for a pod (no cluster)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from octo_devtools.devcluster.podplan import NodeInfo, PodPlanner, crash_backoff, go_duration
from octo_devtools.devcluster.rules import make_rule

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def pod(*images: str, restart_policy: str = "Always") -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "resourceVersion": "7"},
        "spec": {
            "restartPolicy": restart_policy,
            "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)],
        },
    }


def plan(p: dict[str, Any], *rules: Any) -> list[Any]:
    return list(PodPlanner(p, list(rules), NodeInfo(), "10.244.0.9", clock=lambda: NOW).steps())


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (40, "40s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s")]
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_crash_backoff_doubles_and_caps_at_five_minutes() -> None:
    assert [crash_backoff(n) for n in (1, 2, 3, 6, 20)] == [10, 20, 40, 300, 300]


def test_default_pod_is_bound_running_and_ready() -> None:
    (step,) = plan(pod("nginx:1.25"))
    assert step.bind
    status = step.status
    assert status["phase"] == "Running"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    (container,) = status["containerStatuses"]
    assert container["state"] == {"running": {"startedAt": "2026-11-21T12:00:00Z"}}
    assert container["ready"]
    assert container["started"]
    assert container["image"] == "docker.io/library/nginx:1.25"
    assert container["imageID"].startswith("docker.io/library/nginx@sha256:")
    assert status["podIP"] == "10.244.0.9"
    assert [(e.component, e.reason) for e in step.events] == [
        ("default-scheduler", "Scheduled"),
        ("kubelet", "Pulled"),
        ("kubelet", "Created"),
        ("kubelet", "Started"),
    ]
    assert step.events[1].field_path == "spec.containers{c0}"


def test_job_pods_run_to_completion_by_default() -> None:
    running, done = plan(pod("busybox", restart_policy="Never"))
    assert running.status["phase"] == "Running"
    assert done.after == 0.5
    assert done.status["phase"] == "Succeeded"
    terminated = done.status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")


def test_most_severe_rule_drives_a_multi_container_pod() -> None:
    first, second = plan(pod("nginx", "example.invalid/x:1"), make_rule("example.invalid/*", "ErrImagePull"))
    web, bad = first.status["containerStatuses"]
    assert "running" in web["state"]
    assert bad["state"]["waiting"]["reason"] == "ErrImagePull"
    assert first.status["phase"] == "Pending"
    ready = next(c for c in first.status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "containers with unready status: [c1]"
    assert second.status["containerStatuses"][1]["state"]["waiting"] == {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "example.invalid/x:1"',
    }


def test_crash_loop_with_interval_keeps_restarting() -> None:
    steps = PodPlanner(
        pod("app"),
        [make_rule("*", "crash-loop-backoff", restart_interval=1.0, restart_count=1)],
        NodeInfo(),
        "10.244.0.9",
        clock=lambda: NOW,
    ).steps()
    counts = []
    for _ in range(4):
        status = next(steps).status
        assert status is not None
        counts.append(status["containerStatuses"][0]["restartCount"])
    assert counts == [1, 2, 3, 4]


def test_unschedulable_pod_is_not_bound() -> None:
    (step,) = plan(pod("x"), make_rule("*", "unschedulable"))
    assert not step.bind
    assert step.status["conditions"][0]["reason"] == "Unschedulable"
    assert [(e.type, e.reason, e.component) for e in step.events] == [
        ("Warning", "FailedScheduling", "default-scheduler")
    ]


def test_ignore_rule_plans_nothing() -> None:
    assert plan(pod("x"), make_rule("*", "ignore")) == []
