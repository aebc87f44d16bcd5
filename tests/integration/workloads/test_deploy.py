"""Workload deploys with the real helm on the local cluster (see conftest.py for the setup)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.contracts import ServerMethod
from communication_operator.workloads.deployed import HelmReleaseWorkloads
from communication_operator.workloads.repository import repository_alias
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.waiting import eventually
from tests.unit.workloads.doubles import deploys

from .conftest import BROKER_PASSWORD, HELM_TIMEOUT, TENANT, DeployerFactory, secret_free_logs

pytestmark = pytest.mark.cluster

PROGRESS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS
CHARTS = Path(__file__).resolve().parents[2] / "charts"
SECRET = "sup3r-secret-override"
BIG_ID = "123456789012345678901234"
UNREACHABLE_REPO = "http://127.0.0.1:9/charts"


@pytest.mark.parametrize("helm", ["helm", "helm3"])
async def test_good_workload_deploys_labelled_with_layered_values_and_secrets_kept_out(
    deployer: DeployerFactory, kube_api: client.ApiClient, caplog: pytest.LogCaptureFixture, helm: str
) -> None:
    caplog.set_level(logging.DEBUG)
    d = await deployer(helm=helm)

    workload = await d.deploy(
        values_yaml="config:\n  greeting: from-base\n  color: green\n",
        values=[
            {"path": "config.color", "value": "red", "isSecret": False},
            {"path": "config.tier", "value": BIG_ID, "isSecret": False},
            {"path": "config.password", "value": SECRET, "isSecret": True},
        ],
    )
    settled = await d.wait_settled(workload)

    release = d.release(workload)
    assert settled["deploymentState"] == "Deployed", settled
    assert settled["statusMessage"] == "Deployed revision 1 of web 0.1.0"
    core = client.CoreV1Api(kube_api)
    config = await core.read_namespaced_config_map(f"{release}-web-config", d.namespace)
    # chart default < valuesYaml < structured overrides; the 24-digit id stays a string
    assert (config.data["greeting"], config.data["color"], config.data["tier"]) == (
        "from-base",
        "red",
        BIG_ID,
    )
    rendered = json.loads(config.data["values.json"])
    assert rendered["password"] == {
        "valueFrom": {"secretKeyRef": {"name": f"{release}-octo-secrets", "key": "config.password"}}
    }
    secret = await core.read_namespaced_secret(f"{release}-octo-secrets", d.namespace)
    assert base64.b64decode(secret.data["config.password"]).decode() == SECRET
    assert base64.b64decode(secret.data["secrets.rabbitmq"]).decode() == BROKER_PASSWORD
    assert secret.metadata.labels["octo-mesh.meshmakers.io/workload-rt-id"] == workload
    labels = await d.release_record_labels(release)
    assert labels["octo-mesh.meshmakers.io/tenant"] == TENANT
    assert labels["octo-mesh.meshmakers.io/pool-rt-id"] == d.pool_rt_id
    assert labels["octo-mesh.meshmakers.io/workload-rt-id"] == workload
    assert labels["octo-mesh.meshmakers.io/managed-by"] == "communication-operator"
    code, values, _ = await d.helm_cmd("get", "values", release, "-n", d.namespace, "-o", "json")
    assert code == 0
    assert SECRET not in values
    assert BROKER_PASSWORD not in values
    for _, text, _ in await d.reports(workload):
        assert SECRET not in text
    events = await core.list_namespaced_event(d.namespace)
    assert all(SECRET not in (e.message or "") for e in events.items)
    secret_free_logs(caplog, SECRET, BROKER_PASSWORD)
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"octo-values-*-{release}-*"))
    source = HelmReleaseWorkloads(kube_api, d.namespace)
    assert await source.workload_rt_ids_by_pool() == {(TENANT, d.pool_rt_id): [workload]}


@pytest.mark.parametrize("helm", ["helm", "helm3"])
async def test_image_pull_backoff_is_reported_live_then_fails_fast_with_diagnostics(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet, helm: str
) -> None:
    fake_kubelet.add_rule("example.invalid/*", "image-pull-backoff")
    d = await deployer(helm=helm)
    started = time.monotonic()

    workload = await d.deploy(values=[{"path": "image.repository", "value": "example.invalid/nope"}])
    settled = await d.wait_settled(workload)

    elapsed = time.monotonic() - started
    assert settled["deploymentState"] == "Error"
    assert elapsed < HELM_TIMEOUT - 5, f"fail-fast took {elapsed:.1f} s of a {HELM_TIMEOUT:g} s helm timeout"
    reports = await d.reports(workload)
    kinds = [method for method, _, _ in reports]
    assert kinds[-1] == STATUS
    assert kinds.count(STATUS) == 1
    progress = [text for method, text, _ in reports if method == PROGRESS]
    assert any("ImagePullBackOff" in text or "ErrImagePull" in text for text in progress), progress
    status = settled["statusMessage"]
    assert "stopped early (fail-fast)" in status
    assert "\n\nPod diagnostics:\n" in status
    assert "example.invalid/nope" in status
    release = d.release(workload)
    assert all(not entry["status"].startswith("pending-") for entry in await d.history(release))


@pytest.mark.parametrize(
    ("behaviour", "params", "expected", "expected_progress"),
    [
        (
            "crash-loop-backoff",
            {"exit_code": 137, "reason": "OOMKilled"},
            "CrashLoopBackOff",
            "CrashLoopBackOff",
        ),
        # Progress reports carry upstream's lines (octo-spec §4.11): the scheduler's Warning event.
        ("unschedulable", {}, "Unschedulable", "FailedScheduling"),
        (
            "create-container-config-error",
            {},
            "CreateContainerConfigError",
            "CreateContainerConfigError",
        ),
    ],
)
async def test_other_hard_failures_fail_fast(
    deployer: DeployerFactory,
    fake_kubelet: FakeKubelet,
    behaviour: str,
    params: dict[str, object],
    expected: str,
    expected_progress: str,
) -> None:
    fake_kubelet.add_rule("example.invalid/*", behaviour, **params)
    d = await deployer()
    started = time.monotonic()

    workload = await d.deploy(values=[{"path": "image.repository", "value": "example.invalid/broken"}])
    settled = await d.wait_settled(workload)

    assert settled["deploymentState"] == "Error"
    assert time.monotonic() - started < HELM_TIMEOUT - 5
    assert "stopped early (fail-fast)" in settled["statusMessage"]
    assert expected in settled["statusMessage"]
    if behaviour == "crash-loop-backoff":
        assert "last exit code 137" in settled["statusMessage"]
        assert "OOMKilled" in settled["statusMessage"]
    progress = [text for method, text, _ in await d.reports(workload) if method == PROGRESS]
    assert any(expected_progress in text for text in progress), progress


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"chart_version": "9.9.9"},
            "helm upgrade --install --dry-run=server {release} failed with exit code 1. stderr: ",
        ),
        (
            {"values_yaml": "image: not-a-map\n"},
            "helm upgrade --install --dry-run=server {release} failed with exit code 1. stderr: ",
        ),
        (
            {"repository_url": UNREACHABLE_REPO},
            f"helm repo add {repository_alias(UNREACHABLE_REPO)} failed with exit code 1. stderr: ",
        ),
        ({"chart_name": "no-such-chart"}, "no-such-chart"),
    ],
    ids=["missing-version", "render-error", "unreachable-repository", "missing-chart"],
)
async def test_broken_sources_fail_with_clear_statuses(
    deployer: DeployerFactory, fields: dict[str, str], expected: str
) -> None:
    d = await deployer()

    workload = await d.deploy(**fields)
    settled = await d.wait_settled(workload, timeout=40)

    assert settled["deploymentState"] == "Error"
    assert expected.format(release=d.release(workload)) in settled["statusMessage"], settled["statusMessage"]
    assert await d.history(d.release(workload)) == []


async def test_undeploy_removes_release_and_secret(
    deployer: DeployerFactory, kube_api: client.ApiClient
) -> None:
    d = await deployer()
    workload = await d.deploy(values=[{"path": "config.password", "value": SECRET, "isSecret": True}])
    assert (await d.wait_settled(workload))["deploymentState"] == "Deployed"
    release = d.release(workload)

    await d.sim.admin.undeploy_workload(workload)

    async def gone() -> bool:
        if await d.history(release):
            return False
        try:
            await client.CoreV1Api(kube_api).read_namespaced_secret(f"{release}-octo-secrets", d.namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(gone, timeout=40, what="release and per-release Secret removed")
    assert (await d.state_of(workload))["deploymentState"] == "Undeployed"


async def test_redeploy_while_in_flight_cancels_the_older_run_cleanly(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule("example.invalid/slow*", "ready", delay=20)
    d = await deployer()
    workload = await d.create(values=[{"path": "image.repository", "value": "example.invalid/slow"}])
    await d.sim.admin.deploy_workload(workload)
    release = d.release(workload)
    await eventually(lambda: d.history(release), timeout=30, what="the first helm run to create the release")

    # The user fixes the workload while the first deploy still waits for its pods.
    await d.sim.admin.push(
        "WorkloadDeployedAsync",
        [
            {
                "tenantId": TENANT,
                "poolRtId": d.pool_rt_id,
                "workloadName": "web",
                "workloadRtId": workload,
                "workloadType": 0,
                "repositoryUrl": d.repo.url,
                "chartName": "web",
                "chartVersion": "",
                "valuesYaml": "",
                "values": [],
            }
        ],
    )
    settled = await d.wait_settled(workload)

    assert settled["deploymentState"] == "Deployed", settled
    statuses = [text for method, text, _ in await d.reports(workload) if method == STATUS]
    assert len(statuses) == 1, statuses
    history = await d.history(release)
    assert history[-1]["status"] == "deployed"
    assert all(not entry["status"].startswith("pending-") for entry in history), history
    assert deploys(d.service.metrics, "cancelled") == 1


@pytest.mark.parametrize("stuck", ["pending-install", "pending-upgrade"])
async def test_a_release_left_pending_by_a_killed_helm_is_recovered_on_the_next_deploy(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet, stuck: str
) -> None:
    fake_kubelet.add_rule("example.invalid/*", "ready", delay=60)
    d = await deployer()
    workload = await d.create()
    release = d.release(workload)
    if stuck == "pending-upgrade":
        await d.sim.admin.deploy_workload(workload)
        assert (await d.wait_settled(workload))["deploymentState"] == "Deployed"
    # A helm run that dies with the operator (SIGKILL: no chance to mark the release failed).
    process = await asyncio.create_subprocess_exec(
        str(d.helm_binary), "upgrade", "--install", release, str(CHARTS / "web"), "-n", d.namespace,
        "--set", "image.repository=example.invalid/slow", "--wait", "--timeout", "60s",
        env=d.helm_env, stdout=-1, stderr=-1, start_new_session=True,
    )  # fmt: skip

    async def pending() -> bool:
        history = await d.history(release)
        return bool(history) and history[-1]["status"] == stuck

    await eventually(pending, timeout=30, what=f"{release} in {stuck}")
    os.killpg(process.pid, signal.SIGKILL)
    await process.wait()

    await d.sim.admin.deploy_workload(workload)
    await eventually(
        lambda: _has_new_status(d, workload, 2 if stuck == "pending-upgrade" else 1),
        timeout=60,
        what="new status",
    )

    settled = await d.state_of(workload)
    assert settled["deploymentState"] == "Deployed", settled
    progress = [text for method, text, _ in await d.reports(workload) if method == PROGRESS]
    action = (
        "rolled back to revision 1"
        if stuck == "pending-upgrade"
        else "uninstalled it (it was never deployed)"
    )
    assert any(f"stuck in {stuck}" in text and action in text for text in progress), progress
    assert (await d.history(release))[-1]["status"] == "deployed"


async def _has_new_status(d: object, workload: str, count: int) -> bool:
    reports = await d.reports(workload)  # type: ignore[attr-defined]
    return sum(1 for method, _, _ in reports if method == STATUS) >= count


async def test_status_reaches_the_controller_after_it_drops_mid_deploy(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule("example.invalid/slow*", "ready", delay=4)
    d = await deployer()
    workload = await d.deploy(values=[{"path": "image.repository", "value": "example.invalid/slow"}])
    await eventually(lambda: d.history(d.release(workload)), timeout=30, what="helm to create the release")

    await d.sim.admin.fault("drop")
    settled = await d.wait_settled(workload, timeout=60)

    assert settled["deploymentState"] == "Deployed", settled
    statuses = [text for method, text, _ in await d.reports(workload) if method == STATUS]
    assert statuses == ["Deployed revision 1 of web 0.1.0"]
    assert (
        deploys(d.service.metrics, "cancelled") == 0
    )  # the re-dispatch after reconnect did not restart helm


@pytest.mark.slow
async def test_twenty_workloads_at_once_never_exceed_the_helm_bound(deployer: DeployerFactory) -> None:
    d = await deployer(max_concurrent=4)
    peak = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, len(_helm_processes(d.namespace)))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    workloads = [await d.create(f"w{index}") for index in range(20)]
    for workload in workloads:
        await d.sim.admin.deploy_workload(workload)
    for workload in workloads:
        assert (await d.wait_settled(workload, timeout=240))["deploymentState"] == "Deployed"
    stop.set()
    await sampler

    assert 1 <= peak <= 4, peak
    assert d.service.scheduler.peak_running == 4


def _helm_processes(namespace: str) -> list[int]:
    """helm children of this test process (the service's helm runs)."""
    found = []
    own = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name.startswith("helm") and rest[1] == own:
            found.append(int(entry.name))
    return found
