"""The workload scenarios on the real node: every signal the operator reports was written by the real
kubelet (containerd, runc, the CNI bridge) or the real kube-scheduler, not by the fake kubelet."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from communication_operator.contracts import ServerMethod
from octo_devtools.devcluster import realnode
from octo_devtools.devcluster.controlplane import ClusterState
from octo_devtools.testing.cluster import KubeCluster
from octo_devtools.testing.waiting import eventually

from .conftest import NODE_HELM_TIMEOUT, NodeDeployerFactory, values_for_testapp

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.slow]

PROGRESS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS
MISSING_REPOSITORY = "registry.example.invalid/missing"
SETTLE_TIMEOUT = NODE_HELM_TIMEOUT + 30
LEAKED_SECRET = "s3cret-pr1nted-by-the-app"


async def release_pods(api: client.ApiClient, namespace: str, release: str) -> list[client.V1Pod]:
    pods = await client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={release}"
    )
    return list(pods.items)


def pod_cgroups(cluster: KubeCluster, uid: str) -> list[Path]:
    state = ClusterState.load(cluster.state_dir)
    assert state is not None
    node = realnode.RealNode.from_state(state)
    assert node is not None
    marker = "pod" + uid
    return [d for d in realnode._cgroup_dirs(node.cgroup_root) if marker in d.parts]


def processes_in(cgroups: list[Path]) -> set[int]:
    found: set[int] = set()
    for directory in cgroups:
        try:
            found |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
        except OSError:
            continue  # removed meanwhile: nothing runs there
    return found


async def test_good_chart_becomes_ready_through_the_real_readiness_probe(
    node_deployer: NodeDeployerFactory, node_api: client.ApiClient
) -> None:
    d = await node_deployer()

    workload = await d.deploy(chart_name="testapp")
    settled = await d.wait_settled(workload, timeout=SETTLE_TIMEOUT)

    assert settled["deploymentState"] == "Deployed", settled
    assert settled["statusMessage"] == "Deployed revision 1 of testapp 0.1.0"
    (pod,) = await release_pods(node_api, d.namespace, d.release(workload))
    (container,) = pod.spec.containers
    assert container.readiness_probe.http_get.path == "/healthz"
    ready = {c.type: c.status for c in pod.status.conditions}
    assert ready["Ready"] == "True"
    assert pod.status.container_statuses[0].container_id.startswith("containerd://")
    with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/healthz", timeout=10) as answer:
        assert answer.status == 200


async def test_missing_image_reports_err_image_pull_and_backoff_live_then_fails_fast(
    node_deployer: NodeDeployerFactory,
) -> None:
    d = await node_deployer()
    started = time.monotonic()

    workload = await d.deploy(
        chart_name="testapp", values=[{"path": "image.repository", "value": MISSING_REPOSITORY}]
    )
    settled = await d.wait_settled(workload, timeout=SETTLE_TIMEOUT)

    elapsed = time.monotonic() - started
    assert settled["deploymentState"] == "Error", settled
    assert elapsed < NODE_HELM_TIMEOUT - 5, f"fail-fast took {elapsed:.1f} s of {NODE_HELM_TIMEOUT:g} s"
    reports = await d.reports(workload)
    progress = [text for method, text, _ in reports if method == PROGRESS]
    assert any("ErrImagePull" in text or "ImagePullBackOff" in text for text in progress), progress
    # the real kubelet's pull error (containerd could not resolve the registry) reaches the controller
    assert any(
        "rpc error: code = Unknown desc = " in text and "registry.example.invalid" in text
        for text in progress
    ), progress
    assert [method for method, _, _ in reports].count(STATUS) == 1
    status = settled["statusMessage"]
    assert "stopped early (fail-fast)" in status
    assert "\n\nPod diagnostics:\n" in status
    assert MISSING_REPOSITORY in status


async def test_exit_1_is_a_real_crash_loop_with_growing_restarts(
    node_deployer: NodeDeployerFactory, node_api: client.ApiClient
) -> None:
    d = await node_deployer()
    restart_counts: list[int] = []

    async def note_restarts(release: str) -> None:
        while True:
            for pod in await release_pods(node_api, d.namespace, release):
                for status in pod.status.container_statuses or []:
                    if not restart_counts or restart_counts[-1] != status.restart_count:
                        restart_counts.append(status.restart_count)
            await asyncio.sleep(0.2)

    workload = await d.create(chart_name="testapp", values_yaml=values_for_testapp("exit", "1"))
    watcher = asyncio.create_task(note_restarts(d.release(workload)))
    try:
        await d.sim.admin.deploy_workload(workload)
        settled = await d.wait_settled(workload, timeout=SETTLE_TIMEOUT)
    finally:
        watcher.cancel()

    assert settled["deploymentState"] == "Error", settled
    status = settled["statusMessage"]
    assert "stopped early (fail-fast)" in status
    assert "CrashLoopBackOff" in status
    # the real kubelet restarted it again and again before the operator gave up (policy: 2 restarts)
    assert restart_counts == sorted(restart_counts), restart_counts
    assert max(restart_counts) >= 2, restart_counts
    progress = [text for method, text, _ in await d.reports(workload) if method == PROGRESS]
    assert any("exit code 1" in text for text in progress), progress


async def test_over_the_memory_limit_is_a_real_oom_kill(node_deployer: NodeDeployerFactory) -> None:
    d = await node_deployer()

    workload = await d.deploy(
        chart_name="testapp",
        values_yaml=values_for_testapp("alloc", "64", limits={"memory": "16Mi"}),
    )
    settled = await d.wait_settled(workload, timeout=SETTLE_TIMEOUT)

    assert settled["deploymentState"] == "Error", settled
    status = settled["statusMessage"]
    assert "OOMKilled" in status
    assert "last exit code 137" in status


async def test_pod_larger_than_the_node_fails_scheduling_by_the_real_scheduler(
    node_deployer: NodeDeployerFactory,
) -> None:
    d = await node_deployer()
    started = time.monotonic()

    workload = await d.deploy(chart_name="testapp", values_yaml=values_for_testapp(requests={"cpu": "500"}))
    settled = await d.wait_settled(workload, timeout=SETTLE_TIMEOUT)

    assert settled["deploymentState"] == "Error", settled
    assert time.monotonic() - started < NODE_HELM_TIMEOUT - 5
    status = settled["statusMessage"]
    assert "stopped early (fail-fast)" in status
    assert "0/1 nodes are available: 1 Insufficient cpu." in status
    progress = [text for method, text, _ in await d.reports(workload) if method == PROGRESS]
    assert any("Insufficient cpu" in text for text in progress), progress


async def test_undeploy_removes_the_real_containers(
    node_deployer: NodeDeployerFactory, node_api: client.ApiClient, real_node_cluster: KubeCluster
) -> None:
    d = await node_deployer()
    workload = await d.deploy(chart_name="testapp")
    assert (await d.wait_settled(workload, timeout=SETTLE_TIMEOUT))["deploymentState"] == "Deployed"
    (pod,) = await release_pods(node_api, d.namespace, d.release(workload))
    cgroups = pod_cgroups(real_node_cluster, pod.metadata.uid)
    assert processes_in(cgroups), "the deployed pod has no process on the node"

    await d.sim.admin.undeploy_workload(workload)

    async def containers_gone() -> bool:
        return not processes_in(cgroups) and not await release_pods(
            node_api, d.namespace, d.release(workload)
        )

    await eventually(containers_gone, timeout=90, interval=0.5, what="the pod's processes and object gone")
    assert (await d.state_of(workload))["deploymentState"] == "Undeployed"


async def test_real_failure_messages_reach_the_controller_redacted_and_bounded(
    node_deployer: NodeDeployerFactory, node_api: client.ApiClient
) -> None:
    """The container prints a secret-flagged value; the real kubelet puts its log tail into the
    termination message. Nothing the controller receives may contain it."""
    d = await node_deployer()

    workload = await d.deploy(
        chart_name="testapp",
        values_yaml=values_for_testapp("exit", "1") + "messageFromSecret:\n  enabled: true\n",
        values=[{"path": "config.password", "value": LEAKED_SECRET, "isSecret": True}],
    )
    settled = await d.wait_settled(workload, timeout=SETTLE_TIMEOUT)

    assert settled["deploymentState"] == "Error", settled
    (pod,) = await release_pods(node_api, d.namespace, d.release(workload))
    termination = pod.status.container_statuses[0].last_state.terminated
    assert LEAKED_SECRET in termination.message  # the real kubelet did carry it
    reports = await d.reports(workload)
    assert reports
    for _, text, _ in reports:
        assert LEAKED_SECRET not in text
        assert len(text) <= 4000
    assert LEAKED_SECRET not in settled["statusMessage"]
    # ... and the real message did travel, masked
    texts = [text for _, text, _ in reports] + [settled["statusMessage"]]
    assert any("testapp: exiting with code 1: ***" in text for text in texts), texts
