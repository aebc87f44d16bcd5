"""The real node itself: pods run for real, statuses come from the real kubelet, `down` leaves nothing.

Everything here waits on observable conditions with generous bounds (a loaded 2-core machine), never
on fixed sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from octo_devtools.devcluster import realnode
from octo_devtools.devcluster.controlplane import ClusterState, KubeRest, pid_is_running
from octo_devtools.devcluster.images import TESTAPP_PORT
from octo_devtools.testing.cluster import KubeCluster
from octo_devtools.testing.realnode import (
    HostSnapshot,
    app_pod,
    container_status,
    create_pod,
    is_running_and_ready,
    pod_events,
    poll_until,
    wait_pod,
    waiting_reason,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]

DEVCLUSTER = [sys.executable, "-m", "octo_devtools.devcluster.cli"]
MISSING_IMAGE = "registry.example.invalid/missing:1.0"


def node_of(cluster: KubeCluster) -> realnode.RealNode:
    state = ClusterState.load(cluster.state_dir)
    assert state is not None
    node = realnode.RealNode.from_state(state)
    assert node is not None
    return node


def test_node_is_ready_without_taints_and_runs_a_pod_with_a_pod_ip(
    real_node_cluster: KubeCluster, node_namespace: str
) -> None:
    rest = real_node_cluster.rest()
    node = node_of(real_node_cluster)
    _, node_object = rest.get(f"/api/v1/nodes/{node.name}")
    assert node_object["status"]["nodeInfo"]["kubeletVersion"] == "v1.20.2"
    assert node_object["status"]["nodeInfo"]["containerRuntimeVersion"] == "containerd://1.6.20"
    assert not node_object["spec"].get("taints"), node_object["spec"]

    create_pod(rest, node_namespace, app_pod("web", readiness=True))
    pod = wait_pod(rest, node_namespace, "web", is_running_and_ready, "Running and Ready with a pod IP")

    assert pod["spec"]["nodeName"] == node.name  # bound by the real kube-scheduler
    assert ip_address(pod["status"]["podIP"]) in ip_network(node.subnet)
    status = container_status(pod)
    assert status["containerID"].startswith("containerd://")
    assert status["imageID"].startswith("sha256:")  # what containerd reports for an imported image
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:{TESTAPP_PORT}/", timeout=10) as answer:
        assert answer.read() == b"<h1>octo-testapp ok</h1>\n"
    assert realnode._pids_in_cgroup(node.cgroup_root), "no container process in the node's cgroup root"
    scheduled = [e for e in pod_events(rest, node_namespace, "web") if e["reason"] == "Scheduled"]
    assert scheduled[0]["message"] == f"Successfully assigned {node_namespace}/web to {node.name}"


def test_missing_image_is_err_image_pull_then_image_pull_backoff_from_the_real_kubelet(
    real_node_cluster: KubeCluster, node_namespace: str
) -> None:
    rest = real_node_cluster.rest()
    create_pod(rest, node_namespace, app_pod("missing", image=MISSING_IMAGE))

    pod = wait_pod(
        rest,
        node_namespace,
        "missing",
        lambda p: waiting_reason(p) == "ImagePullBackOff",
        "ImagePullBackOff",
    )

    assert container_status(pod)["state"]["waiting"]["message"] == f'Back-off pulling image "{MISSING_IMAGE}"'
    events = pod_events(rest, node_namespace, "missing")
    messages = [(e["source"].get("component"), e["reason"], e["message"]) for e in events]
    pulls = [m for c, r, m in messages if c == "kubelet" and r == "Failed" and m.startswith("Failed to pull")]
    assert pulls, messages
    assert pulls[0].startswith(f'Failed to pull image "{MISSING_IMAGE}": rpc error: code = Unknown desc = ')
    assert "registry.example.invalid" in pulls[0]
    assert ("kubelet", "Failed", "Error: ErrImagePull") in messages
    assert ("kubelet", "BackOff", f'Back-off pulling image "{MISSING_IMAGE}"') in messages


@pytest.mark.slow
def test_second_cluster_coexists_and_down_leaves_no_process_mount_cgroup_or_bridge(
    real_node_cluster: KubeCluster, tmp_path: Path
) -> None:
    before = HostSnapshot.take()
    state_dir = tmp_path / "second"
    env = {**os.environ}
    up = subprocess.run(
        [*DEVCLUSTER, "--state-dir", str(state_dir), "up", "--node", "real"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr
        state = ClusterState.load(state_dir)
        assert state is not None
        second = realnode.RealNode.from_state(state)
        assert second is not None
        first = node_of(real_node_cluster)
        assert (second.bridge, second.subnet, second.cgroup_root) != (
            first.bridge,
            first.subnet,
            first.cgroup_root,
        )
        assert not ip_network(second.subnet).overlaps(ip_network(first.subnet))
        rest = KubeRest(state.server, state.token)
        create_pod(rest, "default", app_pod("busy", readiness=True))
        create_pod(rest, "default", app_pod("missing", image=MISSING_IMAGE))
        pod = wait_pod(rest, "default", "busy", is_running_and_ready, "Running and Ready")
        assert ip_address(pod["status"]["podIP"]) in ip_network(second.subnet)
        wait_pod(rest, "default", "missing", lambda p: waiting_reason(p) is not None, "waiting")
        node_pids = dict(second.pids)
        control_pids = dict(state.pids)
        containers = realnode._pids_in_cgroup(second.cgroup_root)
        assert containers
        assert realnode.host_leftovers(state_dir)  # the check below would see a running node
    finally:
        down = subprocess.run(
            [*DEVCLUSTER, "--state-dir", str(state_dir), "down"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            check=False,
        )
    assert down.returncode == 0, down.stderr
    for pid in [*node_pids.values(), *control_pids.values(), *containers]:
        assert not pid_is_running(pid), pid
    assert realnode.host_leftovers(state_dir) == []
    after = HostSnapshot.take()
    assert after.tunables == before.tunables
    assert after.mounts == before.mounts
    assert after.links - before.links == set()
    assert not state_dir.exists()
    # the session's node is untouched by the other cluster's teardown
    first = node_of(real_node_cluster)
    assert all(pid_is_running(pid, first.binaries[name]) for name, pid in first.pids.items())
    poll_until(lambda: Path(f"/sys/class/net/{first.bridge}").exists(), "the first bridge", timeout=1)


@pytest.mark.slow
def test_a_node_whose_daemons_died_with_a_killed_run_is_cleaned_up_by_the_next_sweep(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "killed"
    up = subprocess.run(
        [*DEVCLUSTER, "--state-dir", str(state_dir), "up", "--node", "real"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr
        state = ClusterState.load(state_dir)
        assert state is not None
        node = realnode.RealNode.from_state(state)
        assert node is not None
        rest = KubeRest(state.server, state.token)
        create_pod(rest, "default", app_pod("orphan", readiness=True))
        wait_pod(rest, "default", "orphan", is_running_and_ready, "Running and Ready")
        # what PR_SET_PDEATHSIG does to the daemons when pytest is SIGKILLed: containers and shims stay
        for pid in node.pids.values():
            os.kill(pid, signal.SIGKILL)
        poll_until(lambda: not any(pid_is_running(pid) for pid in node.pids.values()), "the daemons gone", 30)
        assert realnode._pids_in_cgroup(node.cgroup_root), "the container should outlive its kubelet"

        swept = realnode.sweep_abandoned_nodes()

        assert node.node_dir in swept
        assert realnode.host_leftovers(state_dir) == []
    finally:
        down = subprocess.run(
            [*DEVCLUSTER, "--state-dir", str(state_dir), "down"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert down.returncode == 0, down.stderr
