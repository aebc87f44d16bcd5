"""helm --wait against the local cluster: success once the fake kubelet reports Ready, a timeout when it
reports ImagePullBackOff. Both for helm 4 and helm 3; charts from the loopback chart repository."""

import json
import time
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.cluster import ChartRepo, KubeCluster
from octo_devtools.testing.waiting import eventually

pytestmark = pytest.mark.cluster
CHARTS = Path(__file__).resolve().parents[1] / "charts"
HELMS = ["helm", "helm3"]


@pytest.mark.parametrize("which", HELMS)
async def test_install_waits_until_pods_are_ready(
    kube_cluster: KubeCluster,
    namespace: str,
    fake_kubelet: FakeKubelet,
    kube_api: client.ApiClient,
    which: str,
) -> None:
    started = time.monotonic()
    result = await kube_cluster.helm_async(
        "upgrade", "--install", "web1", str(CHARTS / "web"), "-n", namespace,
        "--set", "replicaCount=2", "--wait", "--timeout", "60s",
        helm=getattr(kube_cluster, which),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    deployment = await client.AppsV1Api(kube_api).read_namespaced_deployment("web1-web", namespace)
    assert deployment.status.available_replicas == 2
    pods = await client.CoreV1Api(kube_api).list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/instance=web1"
    )
    assert [p.status.phase for p in pods.items] == ["Running", "Running"]


@pytest.mark.parametrize("which", HELMS)
async def test_install_times_out_on_image_pull_backoff(
    kube_cluster: KubeCluster,
    namespace: str,
    fake_kubelet: FakeKubelet,
    kube_api: client.ApiClient,
    which: str,
) -> None:
    fake_kubelet.add_rule("example.invalid/*", "image-pull-backoff")
    started = time.monotonic()
    result = await kube_cluster.helm_async(
        "upgrade", "--install", "broken", str(CHARTS / "web"), "-n", namespace,
        "--set", "image.repository=example.invalid/nope", "--wait", "--timeout", "8s",
        helm=getattr(kube_cluster, which),
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert 7 < elapsed < 30
    # helm 4: "resource Deployment/... not ready ... context deadline exceeded"; helm 3: "timed out waiting".
    assert "deadline exceeded" in result.stderr or "timed out waiting" in result.stderr, result.stderr
    pods = await client.CoreV1Api(kube_api).list_namespaced_pod(namespace)
    (pod,) = pods.items
    assert pod.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"


async def test_values_layering_from_the_chart_repository(
    kube_cluster: KubeCluster,
    namespace: str,
    fake_kubelet: FakeKubelet,
    chart_repo: ChartRepo,
    tmp_path: Path,
) -> None:
    assert chart_repo.charts["web"] == "0.1.0"
    assert chart_repo.charts["job"] == "0.1.0"
    values = tmp_path / "values.yaml"
    values.write_text("config:\n  greeting: from-file\n  color: green\n")
    result = await kube_cluster.helm_async(
        "upgrade", "--install", "layered", "web", "--repo", chart_repo.url, "--version", "0.1.0",
        "-n", namespace, "-f", str(values), "--set", "config.color=red", "--wait", "--timeout", "60s",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status, configmap = kube_cluster.rest().get(
        f"/api/v1/namespaces/{namespace}/configmaps/layered-web-config"
    )
    assert status == 200
    # chart default < -f file < --set
    assert {k: configmap["data"][k] for k in ("greeting", "color", "tier")} == {
        "greeting": "from-file",
        "color": "red",
        "tier": "default",
    }


async def test_chart_repository_with_basic_auth(
    kube_cluster: KubeCluster, namespace: str, chart_repo_auth: ChartRepo
) -> None:
    denied = await kube_cluster.helm_async(
        "template", "r", "job", "--repo", chart_repo_auth.url, "--version", "0.1.0"
    )
    assert denied.returncode != 0
    assert "401" in denied.stderr
    assert chart_repo_auth.username is not None
    assert chart_repo_auth.password is not None
    allowed = await kube_cluster.helm_async(
        "template", "r", "job", "--repo", chart_repo_auth.url, "--version", "0.1.0",
        "--username", chart_repo_auth.username, "--password", chart_repo_auth.password,
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert "kind: Job" in allowed.stdout


async def test_job_chart_completes(
    kube_cluster: KubeCluster, namespace: str, fake_kubelet: FakeKubelet, kube_api: client.ApiClient
) -> None:
    result = await kube_cluster.helm_async(
        "upgrade", "--install", "once", str(CHARTS / "job"), "-n", namespace, "--wait", "--wait-for-jobs",
        "--timeout", "60s",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    batch = client.BatchV1Api(kube_api)

    async def succeeded() -> int | None:
        job = await batch.read_namespaced_job("once-job", namespace)
        return job.status.succeeded

    assert await eventually(succeeded, what="Job once-job to succeed") == 1
    listed = await kube_cluster.helm_async("list", "-n", namespace, "-o", "json")
    assert [r["status"] for r in json.loads(listed.stdout)] == ["deployed"]
