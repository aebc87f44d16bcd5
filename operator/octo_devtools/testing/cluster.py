"""pytest plugin: a real local Kubernetes control plane, helm 4/3, a fake kubelet and a chart repository.

Fixtures (see docs/local-cluster.md):

- ``kube_cluster`` (session): etcd + kube-apiserver + kube-controller-manager 1.20.2, started once per run
  through the same code path as ``devcluster up`` but in a temporary state directory, stopped by PID at
  the end; a start in which a component exits during startup is tried again, up to 3 times.
  Attributes: ``kubeconfig``, ``server``, ``token``, ``env`` (for helm/kubectl subprocesses),
  ``helm`` (v4.3.1), ``helm3`` (v3.19.0), ``kubectl``.
- ``namespace`` (function): a fresh namespace, deleted afterwards.
- ``kube_api`` (function): a kubernetes-asyncio ``ApiClient`` for the cluster.
- ``fake_kubelet`` (function): a started `FakeKubelet` for ``namespace`` (``add_rule``/``clear_rules``).
- ``chart_repo`` / ``chart_repo_auth`` (session): loopback helm repositories of ``tests/charts/*``.
- ``real_node_cluster`` (session): a cluster with the real node (containerd, kubelet, kube-scheduler;
  see devcluster/realnode.py), its own state directory; ``node_namespace`` (function): a namespace in it.
  Local images: ``PAUSE_IMAGE``, ``TEST_IMAGE`` (octo_devtools.devcluster.images).

Setting ``node: real|fake``: ``--devcluster-node=real`` or the ini option ``devcluster_node`` (default
``fake``) chooses the node of ``kube_cluster``; with ``real``, ``real_node_cluster`` is that same cluster
(and ``fake_kubelet`` refuses to start: a real scheduler would race it for every pod).

Tests using these fixtures get the ``cluster`` marker automatically (``realnode`` too for the real
node). Missing binaries are built or fetched (``devcluster prepare``) before the first test runs,
outside any test timeout; never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config

from octo_devtools.devcluster import lifecycle
from octo_devtools.devcluster.chartrepo import ChartRepository
from octo_devtools.devcluster.controlplane import (
    ClusterError,
    KubeRest,
    tool_path_dirs,
    wait_for_default_token,
)
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.devcluster.lifecycle import NodeKind
from octo_devtools.devcluster.paths import Toolchain
from octo_devtools.devcluster.prepare import ensure_tools, prepare
from octo_devtools.devcluster.realnode import RealNode

logger = logging.getLogger(__name__)

REAL_NODE_FIXTURES = frozenset({"real_node_cluster", "node_namespace", "node_api"})
CLUSTER_FIXTURES = frozenset({"kube_cluster", "namespace", "kube_api", "fake_kubelet"}) | REAL_NODE_FIXTURES
NODE_OPTION = "devcluster_node"
HELM_FIXTURES = frozenset({"chart_repo", "chart_repo_auth"})


@dataclass
class KubeCluster:
    kubeconfig: Path
    server: str
    token: str
    env: dict[str, str]
    helm: Path
    helm3: Path
    kubectl: Path
    state_dir: Path
    pids: dict[str, int] = field(default_factory=dict)
    node: str = "fake"
    #: The real node (bridge gateway, API address for pods, containerd), when ``node == "real"``.
    real_node: RealNode | None = None

    def rest(self) -> KubeRest:
        """A small synchronous client (JSON over HTTPS with the token)."""
        return KubeRest(self.server, self.token)

    def helm_run(
        self, *args: str, helm: Path | None = None, timeout: float = 120.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run helm (v4 unless ``helm=kube_cluster.helm3``) against this cluster."""
        return subprocess.run(
            [str(helm or self.helm), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    async def helm_async(
        self, *args: str, helm: Path | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Like `helm_run` but without blocking the event loop (so an in-process fake kubelet runs)."""
        process = await asyncio.create_subprocess_exec(
            str(helm or self.helm),
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return subprocess.CompletedProcess(
            [str(helm or self.helm), *args], process.returncode, stdout.decode(), stderr.decode()
        )


@dataclass
class ChartRepo:
    url: str
    charts: dict[str, str]
    username: str | None = None
    password: str | None = None


def _uses(item: pytest.Item, names: frozenset[str]) -> bool:
    return bool(names.intersection(getattr(item, "fixturenames", ())))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(NODE_OPTION, "node of the kube_cluster fixture: fake (default) or real", default="fake")
    parser.addoption(
        "--devcluster-node",
        choices=("fake", "real"),
        default=None,
        help="node of the kube_cluster fixture (overrides the ini option devcluster_node)",
    )


def node_setting(config: pytest.Config) -> NodeKind:
    value = config.getoption("--devcluster-node") or config.getini(NODE_OPTION)
    if value not in ("fake", "real"):
        raise pytest.UsageError(f"{NODE_OPTION} must be fake or real, not {value!r}")
    return "real" if value == "real" else "fake"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _uses(item, CLUSTER_FIXTURES):
            item.add_marker(pytest.mark.cluster)
        if _uses(item, REAL_NODE_FIXTURES):
            item.add_marker(pytest.mark.realnode)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Build/fetch before the first test so an 8-minute cold build never counts against a test timeout.
    needs_cluster = any(_uses(item, CLUSTER_FIXTURES) for item in session.items)
    needs_helm = any(_uses(item, HELM_FIXTURES) for item in session.items)
    if not (needs_cluster or needs_helm) or session.config.option.collectonly:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)
        logger.info("%s", line)

    if needs_cluster:
        prepare(progress)
    else:
        ensure_tools(progress)


def _subprocess_env(extra: dict[str, str], toolchain: Toolchain) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PATH"] = os.pathsep.join([*tool_path_dirs(toolchain), env.get("PATH", "")])
    return env


@contextlib.contextmanager
def _session_cluster(state_dir: Path, node: NodeKind) -> Iterator[KubeCluster]:
    result = _up_with_retries(state_dir, node)
    state, toolchain = result.state, result.toolchain
    try:
        yield KubeCluster(
            kubeconfig=state.kubeconfig,
            server=state.server,
            token=state.token,
            env=_subprocess_env(lifecycle.environment(state, toolchain), toolchain),
            helm=toolchain.helm,
            helm3=toolchain.helm3,
            kubectl=toolchain.kubectl,
            state_dir=state.state_dir,
            pids=dict(state.pids),
            node=node,
            real_node=RealNode.from_state(state),
        )
    finally:
        lifecycle.down(state_dir, lambda line: logger.info("%s", line))


#: Startup attempts of the session's cluster. On a machine under heavy load (a load average several
#: times the core count) kube-controller-manager can give up waiting for a slow apiserver's health and
#: exit; a second start then usually succeeds. Any other error is raised at once.
STARTUP_ATTEMPTS = 3


def _up_with_retries(state_dir: Path, node: NodeKind) -> lifecycle.UpResult:
    for attempt in range(1, STARTUP_ATTEMPTS + 1):
        try:
            return lifecycle.up(
                state_dir, lambda line: logger.info("%s", line), die_with_parent=True, node=node
            )
        except ClusterError as exc:
            if attempt == STARTUP_ATTEMPTS or "during startup" not in str(exc):
                raise
            logger.warning("local cluster start %d failed, trying again: %s", attempt, str(exc)[:300])
            lifecycle.down(state_dir, lambda line: logger.info("%s", line))
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def kube_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeCluster]:
    with _session_cluster(tmp_path_factory.mktemp("devcluster"), node_setting(request.config)) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def real_node_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeCluster]:
    """A cluster whose pods run for real (its own, unless ``kube_cluster`` already has the real node)."""
    if node_setting(request.config) == "real":
        yield request.getfixturevalue("kube_cluster")
        return
    with _session_cluster(tmp_path_factory.mktemp("realnode"), "real") as cluster:
        yield cluster


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{secrets.token_hex(3)}"


def _create_namespace(rest: KubeRest, name: str, *, with_token: bool = False) -> None:
    status, body = rest.request(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    if status != 201:
        raise RuntimeError(f"creating namespace {name} failed: HTTP {status} {body}")
    if with_token:
        wait_for_default_token(rest, name)


@pytest.fixture
def namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _namespace_name(request.node.name)
    rest = kube_cluster.rest()
    _create_namespace(rest, name, with_token=kube_cluster.node == "real")
    yield name
    if kube_cluster.node == "fake":
        # Pods bound to the fake node wait for a kubelet to confirm deletion; confirm it ourselves so the
        # namespace can go away without one.
        rest.request("DELETE", f"/api/v1/namespaces/{name}/pods?gracePeriodSeconds=0")
    rest.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def node_namespace(real_node_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace on the real node's cluster; deleted afterwards (the kubelet stops its pods)."""
    name = _namespace_name(request.node.name)
    rest = real_node_cluster.rest()
    _create_namespace(rest, name, with_token=True)
    yield name
    rest.request("DELETE", f"/api/v1/namespaces/{name}/pods?gracePeriodSeconds=1")
    rest.request("DELETE", f"/api/v1/namespaces/{name}")


@contextlib.asynccontextmanager
async def _api_client(cluster: KubeCluster) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
async def kube_api(kube_cluster: KubeCluster) -> AsyncIterator[client.ApiClient]:
    async with _api_client(kube_cluster) as api:
        yield api


@pytest.fixture
async def node_api(real_node_cluster: KubeCluster) -> AsyncIterator[client.ApiClient]:
    """A kubernetes-asyncio ``ApiClient`` for the real node's cluster."""
    async with _api_client(real_node_cluster) as api:
        yield api


@pytest.fixture
async def fake_kubelet(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, namespace: str
) -> AsyncIterator[FakeKubelet]:
    if kube_cluster.node == "real":
        raise pytest.UsageError("fake_kubelet needs devcluster_node=fake: the real scheduler would race it")
    kubelet = FakeKubelet(kube_api, namespace=namespace)
    await kubelet.start()
    await kubelet.wait_synced()
    try:
        yield kubelet
    finally:
        await kubelet.stop()


def _charts_root(config: pytest.Config) -> Path:
    return config.rootpath / "tests" / "charts"


def _start_repo(
    config: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    username: str | None,
    password: str | None,
) -> ChartRepository:
    ensure_tools()
    toolchain = Toolchain.from_cache()
    workdir = tmp_path_factory.mktemp("chart-repo")
    homes = {
        "HELM_CACHE_HOME": str(workdir / ".helm" / "cache"),
        "HELM_CONFIG_HOME": str(workdir / ".helm" / "config"),
        "HELM_DATA_HOME": str(workdir / ".helm" / "data"),
    }
    charts = sorted(p.parent for p in _charts_root(config).glob("*/Chart.yaml"))
    if not charts:
        raise RuntimeError(f"no charts under {_charts_root(config)}")
    repo = ChartRepository(
        charts,
        workdir / "repo",
        toolchain.helm,
        _subprocess_env(homes, toolchain),
        username=username,
        password=password,
    )
    return repo.start()


@pytest.fixture(scope="session")
def chart_repo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartRepo]:
    repo = _start_repo(request.config, tmp_path_factory, None, None)
    try:
        yield ChartRepo(url=repo.url, charts=dict(repo.charts))
    finally:
        repo.stop()


@pytest.fixture(scope="session")
def chart_repo_auth(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartRepo]:
    """The same charts behind HTTP basic auth (``username``/``password`` attributes)."""
    username, password = "chart-reader", secrets.token_urlsafe(16)
    repo = _start_repo(request.config, tmp_path_factory, username, password)
    try:
        yield ChartRepo(url=repo.url, charts=dict(repo.charts), username=username, password=password)
    finally:
        repo.stop()
