"""Pod and Event objects shaped as the API server returns them (JSON, camelCase), as kubelet,
scheduler and controllers fill them in. Builders take only what a test varies."""

from __future__ import annotations

import copy
import zlib
from typing import Any

NAMESPACE = "octo"
RELEASE = "meshtest-650000000000000000000001"
POD = f"{RELEASE}-7d9f8b6c5-x2k4p"
REPLICASET = f"{RELEASE}-7d9f8b6c5"
T0 = "2026-05-01T10:00:00Z"
T1 = "2026-05-01T10:00:30Z"
T2 = "2026-05-01T10:01:00Z"


def pod(
    *,
    name: str = POD,
    phase: str = "Pending",
    containers: list[dict[str, Any]] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    node: str | None = "node-1",
    created: str = T0,
    owner: tuple[str, str] = ("ReplicaSet", REPLICASET),
    deleting: bool = False,
    **status: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "generateName": f"{REPLICASET}-",
        "namespace": NAMESPACE,
        "uid": f"uid-{name}",
        "resourceVersion": "4711",
        "creationTimestamp": created,
        "labels": {"app.kubernetes.io/instance": RELEASE, "pod-template-hash": "7d9f8b6c5"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": "uid-owner",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if deleting:
        metadata["deletionTimestamp"] = T2
        metadata["deletionGracePeriodSeconds"] = 30
    spec: dict[str, Any] = {
        "containers": [{"name": c["name"], "image": c.get("image", "web:1")} for c in containers or []],
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
    }
    if node:
        spec["nodeName"] = node
    pod_status: dict[str, Any] = {"phase": phase, "qosClass": "BestEffort"}
    if conditions is None:
        conditions = [
            {"type": "Initialized", "status": "True", "lastTransitionTime": T0},
            {
                "type": "Ready",
                "status": "False",
                "reason": "ContainersNotReady",
                "lastTransitionTime": T0,
                "message": "containers with unready status: [web]",
            },
            {
                "type": "ContainersReady",
                "status": "False",
                "reason": "ContainersNotReady",
                "lastTransitionTime": T0,
            },
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": T0},
        ]
    pod_status["conditions"] = conditions
    if node:
        pod_status.update({"hostIP": "10.0.0.5", "podIP": "10.244.0.17", "startTime": T0})
    if containers is not None:
        pod_status["containerStatuses"] = containers
    if init_containers is not None:
        pod_status["initContainerStatuses"] = init_containers
    pod_status.update(status)
    return {"kind": "Pod", "apiVersion": "v1", "metadata": metadata, "spec": spec, "status": pod_status}


def container(
    name: str = "web",
    *,
    image: str = "web:1",
    ready: bool = False,
    restarts: int = 0,
    waiting: tuple[str, str] | None = None,
    running: bool = False,
    terminated: tuple[int, str] | None = None,
    last_terminated: tuple[int, str] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if waiting is not None:
        state["waiting"] = (
            {"reason": waiting[0], "message": waiting[1]} if waiting[1] else {"reason": waiting[0]}
        )
    if running:
        state["running"] = {"startedAt": T1}
    if terminated is not None:
        state["terminated"] = _terminated(*terminated, message)
    status: dict[str, Any] = {
        "name": name,
        "state": state,
        "lastState": {"terminated": _terminated(*last_terminated, None)} if last_terminated else {},
        "ready": ready,
        "restartCount": restarts,
        "image": image,
        "imageID": "" if waiting and "Image" in waiting[0] else f"docker.io/library/{image}@sha256:0123",
        "started": running,
    }
    if not (waiting and "Image" in waiting[0]):
        status["containerID"] = "containerd://6c1d0e4f"
    return status


def _terminated(exit_code: int, reason: str, message: str | None) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": T0,
        "finishedAt": T1,
        "containerID": "containerd://6c1d0e4f",
    }
    if message:
        terminated["message"] = message
    return terminated


def ready_conditions() -> list[dict[str, Any]]:
    return [
        {"type": kind, "status": "True", "lastTransitionTime": T1}
        for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]


def event(
    *,
    reason: str,
    message: str,
    kind: str = "Pod",
    name: str = POD,
    field_path: str | None = None,
    event_type: str = "Warning",
    count: int = 1,
    component: str = "kubelet",
    last: str = T1,
    uid: str | None = None,
    new_style: bool = False,
) -> dict[str, Any]:
    """A core/v1 Event; ``new_style`` gives the shape of an events.k8s.io event (scheduler, kubelet ≥1.27)."""
    involved: dict[str, Any] = {
        "kind": kind,
        "namespace": NAMESPACE,
        "name": name,
        "uid": f"uid-{name}",
        "apiVersion": "v1" if kind == "Pod" else "apps/v1",
        "resourceVersion": "4711",
    }
    if field_path:
        involved["fieldPath"] = field_path
    result: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{name}.17a8b{_crc(reason, message, name) % 10**8:08d}",
            "namespace": NAMESPACE,
            "uid": uid or f"ev-{_crc(reason, message, name, field_path or '')}",
            "resourceVersion": "5000",
            "creationTimestamp": T0,
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": event_type,
        "reportingComponent": component,
        "reportingInstance": "",
    }
    if new_style:
        result.update(
            {
                "source": {},
                "firstTimestamp": None,
                "lastTimestamp": None,
                "eventTime": T0,
                "action": "Scheduling",
                "reportingInstance": f"{component}-node-1",
            }
        )
        if count > 1:
            result["series"] = {"count": count, "lastObservedTime": last}
    else:
        result.update(
            {
                "source": {"component": component},
                "firstTimestamp": T0,
                "lastTimestamp": last,
                "count": count,
                "eventTime": None,
            }
        )
    return result


def with_status(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copied = copy.deepcopy(obj)
    copied["status"].update(changes)
    return copied


def _crc(*parts: str) -> int:
    return zlib.crc32("\x00".join(parts).encode())
