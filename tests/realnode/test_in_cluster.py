"""The operator in-cluster on the real node: what the kind e2e suite (tests/e2e) does, here, in CI.

The image is built without Docker (`devcluster operator-image`) and imported into the node's
containerd; the operator's own chart installs it (`pullPolicy: Never`, the chart's RBAC, security
context, read-only root filesystem and probes). The pod reaches the controller simulator and the chart
repository on the node's bridge gateway, and the API server through the `kubernetes` Service IP
(devcluster/apiproxy.py) with its mounted service-account token. One module-scoped install serves the
tests in order: image, pod, workloads, then `helm uninstall` and the graceful stop.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import subprocess
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client, config

from octo_devtools.controller_sim.admin_client import AdminClient
from octo_devtools.demo.story import Story, StoryTarget, StoryTimeouts
from octo_devtools.devcluster import images, operator_image
from octo_devtools.devcluster.chartrepo import ChartRepository
from octo_devtools.devcluster.controlplane import ClusterState, wait_for_default_token
from octo_devtools.devcluster.realnode import RealNode
from octo_devtools.testing.cluster import KubeCluster
from tests.e2e.support import HostSimulator, image_parts, operator_chart_values

pytestmark = [pytest.mark.realnode, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "communication-operator"
OPERATOR_NAMESPACE = "communication-operator"
POOL_NAMESPACE = "octo-incluster"
TENANT = "incluster"
OPERATOR_HELM_TIMEOUT_S = 60
# The chart derives the pod's grace period from it: helm's timeout + 60 s. A SIGTERM that never
# reached the operator would hold `helm uninstall` until the kubelet's SIGKILL after that long.
GRACE_PERIOD_S = OPERATOR_HELM_TIMEOUT_S + 60
GRACEFUL_STOP_WITHIN_S = 30.0
STOPPED_LOG_LINE = "stopped; pools stay registered until the controller notices the closed connection"
TIMEOUTS = StoryTimeouts(pool=60, deploy=120, failure=120, restart=60, undeploy=90)


@dataclass
class InCluster:
    cluster: KubeCluster
    node: RealNode
    image: operator_image.BuiltImage
    simulator: HostSimulator
    chart_repo: ChartRepository
    timings: dict[str, float] = field(default_factory=dict)
    uninstalled: bool = False

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run(
            [str(self.cluster.kubectl), *args],
            env=self.cluster.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def helm(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.cluster.helm_run(*args, timeout=timeout)


def _values(env: InCluster) -> dict[str, Any]:
    values = operator_chart_values(
        image=env.image.reference,
        controller_uri=env.simulator.controller_uri(env.node.gateway),
        pool_namespace=POOL_NAMESPACE,
        broker_password=secrets.token_urlsafe(12),
    )
    values["image"]["pullPolicy"] = "Never"  # imported into containerd; no registry to ask
    values["operator"]["helm"] = {"timeoutSeconds": OPERATOR_HELM_TIMEOUT_S}
    # The kubelet sets KUBERNETES_SERVICE_HOST to the Service IP; the forwarder there listens on the
    # apiserver's own port, not the Service's 443.
    values["operator"]["extraEnv"] = [{"name": "KUBERNETES_SERVICE_PORT", "value": str(env.node.api_port)}]
    return values


@pytest.fixture(scope="module")
def in_cluster(
    real_node_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InCluster]:
    workdir = tmp_path_factory.mktemp("in-cluster")
    state = ClusterState.load(real_node_cluster.state_dir)
    node = RealNode.from_state(state) if state else None
    assert state is not None
    assert node is not None, "the real node's cluster records no node"
    started = time.monotonic()
    built = operator_image.build_operator_image(print)
    operator_image.import_image(state, built, print)
    timings = {"image build (cached)" if built.cached else "image build": time.monotonic() - started}
    simulator = HostSimulator(
        state_file=workdir / "controller-state.json",
        log_path=workdir / "controller-sim.log",
        bind_host=node.gateway,
    )
    simulator.start()
    repo = ChartRepository(
        [ROOT / "tests" / "charts" / "testapp"],
        workdir / "charts",
        real_node_cluster.helm,
        real_node_cluster.env,
        bind_host=node.gateway,
    ).start()
    env = InCluster(real_node_cluster, node, built, simulator, repo, timings)
    rest = real_node_cluster.rest()
    values_file = workdir / "values.yaml"
    values_file.write_text(yaml.safe_dump(_values(env)))
    values_file.chmod(0o600)
    try:
        status, body = rest.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": POOL_NAMESPACE}},
        )
        assert status == 201, body
        wait_for_default_token(rest, POOL_NAMESPACE)  # the workload pods' account
        started = time.monotonic()
        installed = env.helm(
            "upgrade",
            "--install",
            RELEASE,
            str(ROOT / "charts" / "communication-operator"),
            "--namespace",
            OPERATOR_NAMESPACE,
            "--create-namespace",
            "-f",
            str(values_file),
            "--wait",
            "--timeout=180s",
        )
        env.timings["helm install --wait (pod Ready)"] = time.monotonic() - started
        if installed.returncode != 0:
            raise AssertionError(
                f"helm install of the operator failed: {installed.stderr}\n{_diagnostics(env)}"
            )
        yield env
    finally:
        if not env.uninstalled:
            print(_diagnostics(env))
            env.helm("uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait")
        rest.request("DELETE", f"/api/v1/namespaces/{POOL_NAMESPACE}")
        simulator.stop()
        repo.stop()
        print("in-cluster timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in env.timings.items()))


def _diagnostics(env: InCluster) -> str:
    pods = env.kubectl("get", "pods", "-A", "-o", "wide", check=False)
    events = env.kubectl("get", "events", "-n", OPERATOR_NAMESPACE, check=False)
    log = env.kubectl("logs", "-n", OPERATOR_NAMESPACE, f"deploy/{RELEASE}", "--tail=80", check=False)
    sim = env.simulator.log_path.read_text(errors="replace")[-3000:]
    return (
        f"--- pods ---\n{pods}\n--- events ---\n{events}\n"
        f"--- operator log ---\n{log}\n--- simulator ---\n{sim}"
    )


@pytest.fixture
async def kube(in_cluster: InCluster) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(in_cluster.cluster.kubeconfig), client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture
async def admin(in_cluster: InCluster) -> AsyncIterator[AdminClient]:
    async with AdminClient(in_cluster.simulator.admin_url) as admin_client:
        yield admin_client


def _image_parts(tarball: Path) -> tuple[dict[str, Any], bytes]:
    """The image config and its single layer (uncompressed tar) from the OCI layout tarball."""

    def blob(layout: tarfile.TarFile, name: str) -> bytes:
        member = layout.extractfile(name)
        assert member is not None, name
        return member.read()

    with tarfile.open(tarball) as layout:
        index = json.loads(blob(layout, "index.json"))
        manifest = json.loads(blob(layout, "blobs/sha256/" + index["manifests"][0]["digest"][7:]))
        image_config = json.loads(blob(layout, "blobs/sha256/" + manifest["config"]["digest"][7:]))
        return image_config, blob(layout, "blobs/sha256/" + manifest["layers"][0]["digest"][7:])


def test_image_holds_the_pinned_helm_tini_and_the_venv_and_no_build_tools(in_cluster: InCluster) -> None:
    image_config, layer_bytes = _image_parts(in_cluster.image.tarball)
    assert image_config["config"]["User"] == "65532:65532"
    assert image_config["config"]["Entrypoint"] == ["tini", "--", "communication-operator"]
    with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as layer:
        members = {m.name: m for m in layer.getmembers()}
        helm = layer.extractfile("usr/local/bin/helm")
        assert helm is not None
        assert hashlib.sha256(helm.read()).hexdigest() == operator_image._helm_binary()[1]
    assert members["usr/bin/tini"].isfile()
    assert members["usr/bin/tini"].mode & 0o111
    assert members["opt/venv/bin/communication-operator"].mode & 0o111
    assert members["tmp/operator"].uid == 65532
    owned = [name for name, m in members.items() if m.uid != 0 and name != "tmp/operator"]
    assert owned == [], "everything but the writable dir belongs to root (read-only for the operator)"
    tools = [n for n in members if re.search(r"(^|/)(gcc|cc|make|curl|wget|git|pip3?)$", n)]
    assert tools == []


async def test_operator_pod_is_ready_through_its_probes_and_registers_in_central_mode(
    in_cluster: InCluster, kube: client.ApiClient, admin: AdminClient
) -> None:
    pods = await client.CoreV1Api(kube).list_namespaced_pod(
        OPERATOR_NAMESPACE, label_selector=f"app.kubernetes.io/instance={RELEASE}"
    )
    (pod,) = pods.items
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    assert conditions["Ready"] == "True"
    assert pod.spec.node_name == in_cluster.node.name
    assert pod.spec.containers[0].image == in_cluster.image.reference
    assert pod.spec.containers[0].security_context.read_only_root_filesystem is True
    mounts = {m.mount_path for m in pod.spec.containers[0].volume_mounts}
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts, "no service-account token mounted"
    state = await admin.wait_for(
        lambda s: [o for o in s["operators"] if o["autoManagePools"] is True],
        timeout=60,
        description="the operator registered in central mode",
    )
    assert state


def _container_processes(node: RealNode) -> list[dict[str, Any]]:
    """The operator container's processes as the host sees them (cgroup root of the node)."""
    from octo_devtools.devcluster.realnode import _pids_in_cgroup

    found = []
    for pid in _pids_in_cgroup(node.cgroup_root):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
            status = dict(
                line.split(":\t", 1)
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if ":\t" in line
            )
            root_mount = next(
                line
                for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                if line.split()[4] == "/"
            )
        except (OSError, StopIteration):
            continue
        if any("communication-operator" in a for a in argv):
            found.append(
                {
                    "pid": pid,
                    "argv": argv,
                    "ppid": int(status["PPid"]),
                    "nspid": status["NSpid"].split(),
                    "uid": status["Uid"].split()[0],
                    "root_options": root_mount.split()[5].split(","),
                }
            )
    return found


def test_tini_is_pid_1_and_the_operator_runs_as_65532_on_a_read_only_root(in_cluster: InCluster) -> None:
    processes = _container_processes(in_cluster.node)
    tini = [p for p in processes if p["argv"][:2] == ["tini", "--"]]
    assert len(tini) == 1, processes
    assert tini[0]["argv"] == ["tini", "--", "communication-operator", "run"]
    assert tini[0]["nspid"][-1] == "1", "tini is PID 1 of the container's PID namespace"
    assert tini[0]["uid"] == "65532"
    children = [p for p in processes if p["ppid"] == tini[0]["pid"]]
    assert len(children) == 1, processes
    assert children[0]["uid"] == "65532"
    assert "ro" in children[0]["root_options"], children[0]


async def test_pool_and_workload_deploy_with_pods_on_the_node_then_undeploy(
    in_cluster: InCluster, kube: client.ApiClient, admin: AdminClient
) -> None:
    lines: list[str] = []
    target = StoryTarget(
        admin=admin,
        kube=kube,
        namespace=POOL_NAMESPACE,
        repository_url=in_cluster.chart_repo.url,
        chart_name="testapp",
        tenant_id=TENANT,
        good_image=image_parts(images.TEST_IMAGE),
        timeouts=TIMEOUTS,
    )
    story = Story(target, lines.append)
    started = time.monotonic()
    try:
        lines.append("pool: " + await story.deploy_pool())
        lines.append("good workload: " + await story.deploy_good_workload())
        in_cluster.timings["pool + workload Deployed"] = time.monotonic() - started
        assert story.good_rt_id is not None
        pods = await client.CoreV1Api(kube).list_namespaced_pod(
            POOL_NAMESPACE, label_selector=f"app.kubernetes.io/instance={story.release(story.good_rt_id)}"
        )
        assert pods.items, "no workload pods"
        for pod in pods.items:
            assert pod.spec.node_name == in_cluster.node.name
            assert re.fullmatch(r"10\.244\.\d+\.\d+", pod.status.pod_ip or ""), pod.status.pod_ip
            assert pod.status.pod_ip.rsplit(".", 1)[0] == in_cluster.node.gateway.rsplit(".", 1)[0]
        lines.append("undeploy: " + await story.undeploy_workloads())
        lines.append("pool undeploy: " + await story.undeploy_pool())
    finally:
        print("\n".join(lines))


def test_helm_uninstall_stops_the_operator_gracefully_through_tini(in_cluster: InCluster) -> None:
    rest = in_cluster.cluster.rest()
    selector = f"app.kubernetes.io/instance={RELEASE}"
    status, body = rest.get(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods?labelSelector={selector}")
    assert status == 200
    (pod_name,) = [p["metadata"]["name"] for p in body["items"]]
    follower = subprocess.Popen(
        [str(in_cluster.cluster.kubectl), "logs", "-f", "-n", OPERATOR_NAMESPACE, pod_name],
        env=in_cluster.cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    terminated: list[dict[str, Any]] = []
    processes_gone: list[float] = []  # when the operator's processes left the node's cgroup root
    watching = threading.Event()
    watching.set()

    def watch_exit() -> None:
        while watching.is_set():
            if not processes_gone and not _container_processes(in_cluster.node):
                processes_gone.append(time.monotonic())
            code, pod = rest.get(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods/{pod_name}")
            if code == 404:
                return
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                if (container.get("state") or {}).get("terminated"):
                    terminated.append(container["state"]["terminated"])
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_exit, daemon=True)
    watcher.start()
    time.sleep(1.0)  # the log follower is attached
    started = time.monotonic()
    result = in_cluster.helm(
        "uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait", "--timeout=180s"
    )
    in_cluster.uninstalled = True
    assert result.returncode == 0, result.stderr
    try:
        output, _ = follower.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        follower.kill()
        output, _ = follower.communicate()
    while watcher.is_alive() and time.monotonic() - started < GRACE_PERIOD_S + 30:
        watcher.join(timeout=1)
    watching.clear()
    elapsed = time.monotonic() - started
    in_cluster.timings["helm uninstall --wait + pod gone"] = elapsed
    assert STOPPED_LOG_LINE in output, output[-3000:]
    assert "undelivered report" not in output
    # The operator's own exit is what SIGTERM handling decides; removing the pod object afterwards is
    # the kubelet's pace (kubelet 1.20 under load took up to a minute), bounded by the grace period,
    # after which an ignored SIGTERM would have become a SIGKILL.
    assert processes_gone, "the operator's processes never left the node"
    exited = processes_gone[0] - started
    in_cluster.timings["helm uninstall → operator processes gone"] = exited
    assert exited < GRACEFUL_STOP_WITHIN_S, (
        f"the operator took {exited:.0f} s to exit (grace period {GRACE_PERIOD_S} s): SIGTERM not handled?"
    )
    assert elapsed < GRACE_PERIOD_S, f"the pod took {elapsed:.0f} s to go: killed at the grace period?"
    if terminated:  # the kubelet's last status before the pod object went away
        assert terminated[-1]["exitCode"] == 0, terminated[-1]


async def test_the_controller_saw_the_operator_disconnect(in_cluster: InCluster, admin: AdminClient) -> None:
    assert in_cluster.uninstalled, "runs after the uninstall test"
    await admin.wait_for(
        lambda s: not s["operators"],
        timeout=30,
        description="no operator connected any more",
    )
