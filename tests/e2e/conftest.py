"""The kind end-to-end suite: the operator image and chart in a real cluster with real kubelets.

Selected by ``E2E_KUBECONFIG`` (see docs/e2e.md; ``scripts/e2e-kind.sh`` sets everything up). Without
it, every test marked ``e2e`` is skipped with the reason printed in the summary (``-ra``), never
silently. Settings (environment):

- ``E2E_KUBECONFIG`` — kubeconfig of the kind cluster (required);
- ``E2E_IMAGE`` — the operator image already loaded into kind (default ``communication-operator:e2e``);
- ``E2E_HOST_ADDRESS`` — the host as pods see it (default: the ``kind`` docker network's IPv4 gateway);
- ``E2E_HELM`` / ``E2E_KUBECTL`` — binaries (default: ``helm`` / ``kubectl`` on PATH).

The session fixture starts the controller simulator and a chart repository on the host (all
interfaces), installs ``charts/communication-operator`` in central mode pointing at them, waits for
the rollout, and uninstalls it at the end (printing the operator's log if a test failed).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio import client, config

from octo_devtools.controller_sim.admin_client import AdminClient
from octo_devtools.demo import StoryTarget, StoryTimeouts
from octo_devtools.devcluster.chartrepo import ChartRepository
from tests.e2e.support import (
    E2ESetupError,
    HostSimulator,
    host_address,
    host_chart_repo,
    operator_chart_values,
)

ROOT = Path(__file__).resolve().parents[2]
SKIP_REASON = "e2e: needs E2E_KUBECONFIG (a kind cluster); see docs/e2e.md"
RELEASE = "communication-operator"
OPERATOR_NAMESPACE = "communication-operator"
POOL_NAMESPACE = "octo-e2e"
TENANT = "e2e"
# A real kubelet pulls nginx and reports pull errors in its own words; give it real-world time.
TIMEOUTS = StoryTimeouts(pool=60, deploy=240, failure=300, restart=90, undeploy=180)


def e2e_enabled() -> bool:
    return bool(os.environ.get("E2E_KUBECONFIG"))


def pytest_report_header(config: pytest.Config) -> str:
    if e2e_enabled():
        return f"e2e: against the cluster in E2E_KUBECONFIG={os.environ['E2E_KUBECONFIG']}"
    return "e2e: off (E2E_KUBECONFIG is not set; tests marked e2e are skipped; see docs/e2e.md)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if e2e_enabled():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(skip)


@dataclass
class E2EEnvironment:
    kubeconfig: Path
    image: str
    host: str
    simulator: HostSimulator
    chart_repo: ChartRepository
    helm: str
    kubectl: str

    def kubectl_run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [self.kubectl, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise E2ESetupError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def helm_run(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [self.helm, f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and result.returncode != 0:
            raise E2ESetupError(f"helm {' '.join(args[:3])} failed: {result.stderr.strip()}")
        return result.stdout

    def operator_log(self, lines: int = 200) -> str:
        return self.kubectl_run(
            "logs",
            "-n",
            OPERATOR_NAMESPACE,
            "-l",
            f"app.kubernetes.io/instance={RELEASE}",
            f"--tail={lines}",
            check=False,
        )


def _binary(env_name: str, default: str) -> str:
    path = os.environ.get(env_name) or shutil.which(default)
    if not path:
        raise E2ESetupError(f"{default} is not on PATH (or set {env_name})")
    return path


@pytest.fixture(scope="session")
def e2e(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EEnvironment]:
    kubeconfig = Path(os.environ["E2E_KUBECONFIG"]).expanduser().resolve()
    if not kubeconfig.is_file():
        raise E2ESetupError(f"E2E_KUBECONFIG={kubeconfig} is not a file")
    workdir = tmp_path_factory.mktemp("e2e")
    host = host_address(os.environ.get("E2E_HOST_ADDRESS"))
    helm = _binary("E2E_HELM", "helm")
    simulator = HostSimulator(
        state_file=workdir / "controller-state.json", log_path=workdir / "controller-sim.log"
    )
    simulator.start()
    chart_repo = host_chart_repo([ROOT / "tests" / "charts" / "web"], workdir / "charts", helm, host).start()
    env = E2EEnvironment(
        kubeconfig=kubeconfig,
        image=os.environ.get("E2E_IMAGE", "communication-operator:e2e"),
        host=host,
        simulator=simulator,
        chart_repo=chart_repo,
        helm=helm,
        kubectl=_binary("E2E_KUBECTL", "kubectl"),
    )
    values = operator_chart_values(
        image=env.image,
        controller_uri=simulator.controller_uri(host),
        pool_namespace=POOL_NAMESPACE,
        broker_password=secrets.token_urlsafe(12),
    )
    values_file = workdir / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    values_file.chmod(0o600)
    failed_before = request.session.testsfailed
    try:
        # The pool namespace must exist before the operator starts (the chart does not create it).
        env.kubectl_run(
            "apply",
            "-f",
            "-",
            stdin=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {POOL_NAMESPACE}\n",
        )
        env.helm_run(
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
            "--timeout=300s",
        )
        yield env
    finally:
        if request.session.testsfailed > failed_before:
            print(f"\n--- operator log ({OPERATOR_NAMESPACE}) ---\n{env.operator_log()}")
            print(f"--- controller-sim log ---\n{simulator.log_path.read_text(errors='replace')[-5000:]}")
        env.helm_run("uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait", check=False)
        env.kubectl_run("delete", "namespace", POOL_NAMESPACE, "--wait=false", check=False)
        simulator.stop()
        chart_repo.stop()


@pytest.fixture
async def e2e_admin(e2e: E2EEnvironment) -> AsyncIterator[AdminClient]:
    async with AdminClient(e2e.simulator.admin_url) as admin:
        yield admin


@pytest.fixture
async def e2e_kube(e2e: E2EEnvironment) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(e2e.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
def story_target(e2e: E2EEnvironment, e2e_admin: AdminClient, e2e_kube: client.ApiClient) -> StoryTarget:
    async def restart() -> str:
        return await asyncio.to_thread(e2e.simulator.restart)

    return StoryTarget(
        admin=e2e_admin,
        kube=e2e_kube,
        namespace=POOL_NAMESPACE,
        repository_url=e2e.chart_repo.url,
        tenant_id=TENANT,
        # A real kubelet reports ErrImagePull first and ImagePullBackOff on the retries.
        progress_markers=("ErrImagePull", "ImagePullBackOff"),
        restart_controller=restart,
        timeouts=TIMEOUTS,
    )
