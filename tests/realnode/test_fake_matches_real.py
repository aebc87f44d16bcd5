"""The fake kubelet against the real node: the same pods on both, compared where the operator reads.

Differences found here were fixed in the fake (devcluster/kubelet.py, podplan.py); what stays different
on purpose (the fake's compressed timing) is recorded in docs/local-cluster.md.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from octo_devtools.devcluster.controlplane import KubeRest
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.cluster import KubeCluster
from octo_devtools.testing.realnode import (
    app_pod,
    create_pod,
    is_running_and_ready,
    pod_events,
    poll_until,
    wait_pod,
    waiting_reason,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]

MISSING_IMAGE = "registry.example.invalid/missing:1.0"


def event_shape(event: dict[str, Any]) -> dict[str, Any]:
    """What tells a scheduler event from a kubelet one, and where its time and count live."""
    return {
        "type": event["type"],
        "reason": event["reason"],
        "message": event["message"],
        "source.component": (event.get("source") or {}).get("component"),
        "count": event.get("count"),
        "firstTimestamp": event.get("firstTimestamp") is not None,
        "lastTimestamp": event.get("lastTimestamp") is not None,
        "eventTime": event.get("eventTime") is not None,
        "action": event.get("action"),
        "reportingComponent": event.get("reportingComponent"),
        "reportingInstance": (event.get("reportingInstance") or "").startswith("default-scheduler-"),
    }


def first_event(rest: KubeRest, namespace: str, pod: str, reason: str) -> dict[str, Any]:
    found: dict[str, Any] = poll_until(
        lambda: next((e for e in pod_events(rest, namespace, pod) if e["reason"] == reason), None),
        what=f"a {reason} event for {namespace}/{pod}",
    )
    return found


async def test_scheduler_events_have_the_real_schedulers_shape(
    real_node_cluster: KubeCluster,
    node_namespace: str,
    kube_cluster: KubeCluster,
    namespace: str,
    fake_kubelet: FakeKubelet,
) -> None:
    fake_kubelet.add_rule("*", "unschedulable", message="0/1 nodes are available: 1 Insufficient cpu.")
    real, fake = real_node_cluster.rest(), kube_cluster.rest()
    big = app_pod("big", cpu_request="500")

    await asyncio.to_thread(create_pod, real, node_namespace, big)
    await asyncio.to_thread(create_pod, fake, namespace, big)
    real_event = await asyncio.to_thread(first_event, real, node_namespace, "big", "FailedScheduling")
    fake_event = await asyncio.to_thread(first_event, fake, namespace, "big", "FailedScheduling")

    # kube-scheduler 1.20 records through events.k8s.io: no source/count/first-last timestamps
    assert event_shape(real_event) == {
        "type": "Warning",
        "reason": "FailedScheduling",
        "message": "0/1 nodes are available: 1 Insufficient cpu.",
        "source.component": None,
        "count": None,
        "firstTimestamp": False,
        "lastTimestamp": False,
        "eventTime": True,
        "action": "Scheduling",
        "reportingComponent": "default-scheduler",
        "reportingInstance": True,
    }
    assert event_shape(fake_event) == event_shape(real_event)


async def test_the_scheduled_event_has_the_real_schedulers_shape(
    real_node_cluster: KubeCluster,
    node_namespace: str,
    kube_cluster: KubeCluster,
    namespace: str,
    fake_kubelet: FakeKubelet,
) -> None:
    real, fake = real_node_cluster.rest(), kube_cluster.rest()
    await asyncio.to_thread(create_pod, real, node_namespace, app_pod("web"))
    await asyncio.to_thread(create_pod, fake, namespace, app_pod("web"))

    real_event = await asyncio.to_thread(first_event, real, node_namespace, "web", "Scheduled")
    fake_event = await asyncio.to_thread(first_event, fake, namespace, "web", "Scheduled")

    real_shape, fake_shape = event_shape(real_event), event_shape(fake_event)
    assert real_shape["message"] == f"Successfully assigned {node_namespace}/web to localhost"
    assert fake_shape["message"] == f"Successfully assigned {namespace}/web to devcluster-node"
    del real_shape["message"], fake_shape["message"]
    assert fake_shape == real_shape


def test_real_err_image_pull_lasts_a_pod_worker_back_off_before_image_pull_back_off(
    real_node_cluster: KubeCluster, node_namespace: str
) -> None:
    """Recorded, not copied: the real kubelet shows ErrImagePull until its next pod sync (about 10 s),
    then ImagePullBackOff, and retries the pull when the image back-off (10 s, doubling) expires. The
    fake keeps its compressed default (``backoff_after`` 0.5 s) so fake-kubelet tests stay fast;
    ``backoff_after=10`` gives the real timing."""
    rest = real_node_cluster.rest()
    create_pod(rest, node_namespace, app_pod("missing", image=MISSING_IMAGE))
    wait_pod(rest, node_namespace, "missing", lambda p: waiting_reason(p) == "ErrImagePull", "ErrImagePull")
    seen_err = time.monotonic()
    wait_pod(
        rest, node_namespace, "missing", lambda p: waiting_reason(p) == "ImagePullBackOff", "ImagePullBackOff"
    )
    assert time.monotonic() - seen_err > 5.0


def test_probe_ready_pod_reports_ready_like_the_fake(
    real_node_cluster: KubeCluster, node_namespace: str
) -> None:
    rest = real_node_cluster.rest()
    create_pod(rest, node_namespace, app_pod("ready", readiness=True))
    pod = wait_pod(rest, node_namespace, "ready", is_running_and_ready, "Ready")
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    # the four conditions the fake kubelet writes
    assert conditions == {
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
