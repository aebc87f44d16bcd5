"""Helpers for tests on the real node: pod manifests for the local test image, bounded waits on what
the real kubelet writes, and a snapshot of the host state the node must leave untouched."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octo_devtools.devcluster.controlplane import KubeRest
from octo_devtools.devcluster.images import TEST_IMAGE, TESTAPP_PORT
from octo_devtools.devcluster.realnode import KERNEL_TUNABLES

#: Bounded waits on a loaded 2-core machine: generous, but an assertion names what never happened.
POD_TIMEOUT_S = 120.0

Pod = dict[str, Any]


def app_pod(
    name: str,
    *args: str,
    image: str = TEST_IMAGE,
    readiness: bool = False,
    memory_limit: str | None = None,
    cpu_request: str | None = None,
    restart_policy: str = "Always",
) -> Pod:
    """A one-container pod running ``testapp ARGS`` (serve, exit CODE, crash, alloc MIB, sleep)."""
    container: dict[str, Any] = {"name": "app", "image": image}
    if args:
        container["args"] = list(args)
    if readiness:
        container["readinessProbe"] = {
            "httpGet": {"path": "/healthz", "port": TESTAPP_PORT},
            "periodSeconds": 1,
        }
    resources: dict[str, dict[str, str]] = {}
    if memory_limit:
        resources["limits"] = {"memory": memory_limit}
    if cpu_request:
        resources["requests"] = {"cpu": cpu_request}
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "containers": [container],
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 1,
        },
    }


def create_pod(rest: KubeRest, namespace: str, pod: Pod) -> Pod:
    status, body = rest.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    if status != 201:
        raise AssertionError(f"creating pod {pod['metadata']['name']} failed: HTTP {status} {body}")
    return dict(body)


def get_pod(rest: KubeRest, namespace: str, name: str) -> Pod | None:
    status, body = rest.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    return dict(body) if status == 200 else None


def wait_pod(
    rest: KubeRest,
    namespace: str,
    name: str,
    condition: Callable[[Pod], bool],
    what: str,
    timeout: float = POD_TIMEOUT_S,
) -> Pod:
    """Poll the pod until ``condition`` holds; on timeout fail with ``what`` and the last status."""
    pod: Pod = poll_until(
        lambda: pod if (pod := get_pod(rest, namespace, name)) is not None and condition(pod) else None,
        what=f"pod {namespace}/{name}: {what}",
        timeout=timeout,
        last=lambda: (get_pod(rest, namespace, name) or {}).get("status"),
    )
    return pod


def poll_until(
    probe: Callable[[], Any],
    what: str,
    timeout: float = POD_TIMEOUT_S,
    interval: float = 0.2,
    last: Callable[[], Any] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = last() if last is not None else value
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last seen: {seen!r}")
        time.sleep(interval)


def container_status(pod: Pod) -> dict[str, Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def waiting_reason(pod: Pod) -> str | None:
    waiting = container_status(pod).get("state", {}).get("waiting") or {}
    return waiting.get("reason")


def is_running_and_ready(pod: Pod) -> bool:
    status = pod.get("status", {})
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready and bool(status.get("podIP"))


def pod_events(rest: KubeRest, namespace: str, name: str) -> list[dict[str, Any]]:
    status, body = rest.get(
        f"/api/v1/namespaces/{namespace}/events?fieldSelector=involvedObject.name%3D{name}"
    )
    assert status == 200, body
    return list(body["items"])


@dataclass(frozen=True)
class HostSnapshot:
    """What the node must leave as it found it: kernel tunables, mount points, network links."""

    tunables: dict[str, str]
    mounts: frozenset[str]
    links: frozenset[str]

    @classmethod
    def take(cls) -> HostSnapshot:
        tunables = {key: Path("/proc/sys", key).read_text().strip() for key in KERNEL_TUNABLES}
        mounts = frozenset(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
        names = frozenset(line.split(":")[1].strip().split("@")[0] for line in links.stdout.splitlines())
        return cls(tunables, mounts, names)
