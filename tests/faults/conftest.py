"""The fault rig: the real operator process, the controller simulator as a child process, the local
cluster with the fake kubelet, a loopback chart repository and real helm.

``rig`` (fixture) gives a :class:`FaultRig` for this test's namespace: a central-mode Cloud pool exists
and is deployed at the simulator before the operator starts; ``await rig.start_operator(**env)`` starts
``communication-operator run`` (``OPERATOR__*`` only, see :func:`operator_env`) and waits until the pool
is Online. Everything started is stopped at the end, by PID.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.pools import GROUP, PLURAL, VERSION
from communication_operator.workloads.naming import release_name
from octo_devtools.controller_sim import SimulatorProcess
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.cluster import ChartRepo, KubeCluster
from octo_devtools.testing.operator import OperatorProcess, free_port
from octo_devtools.testing.simulator import fast_options
from octo_devtools.testing.waiting import eventually
from tests.integration.conftest import pool_crd  # noqa: F401 - the CommunicationPool CRD fixture

TENANT = "faults"
BROKER_PASSWORD = "brk-" + secrets.token_hex(12)
#: Helm values of a chart image the fake kubelet makes Ready after a short delay.
READY_IMAGE = "example.test/web-ready"
VALUES_DIR_GLOB = "octo-values-*"


def image_values(repository: str, tag: str = "1") -> str:
    return f"image:\n  repository: {repository}\n  tag: {tag!r}\n"


def operator_env(
    base: dict[str, str],
    *,
    controller_url: str,
    namespace: str,
    helm: Path,
    health_port: int,
    metrics_port: int,
    workdir: Path,
    **overrides: str,
) -> dict[str, str]:
    """Central mode, fast reconnects and fail-fast, helm homes and TMPDIR of this test only.

    ``overrides`` are ``OPERATOR__`` keys without the prefix (``LOG__LEVEL="DEBUG"``)."""
    env = {k: v for k, v in base.items() if not k.upper().startswith("OPERATOR__")}
    for name in ("cache", "config", "data"):
        env[f"HELM_{name.upper()}_HOME"] = str(workdir / "helm" / name)
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(workdir / "tmp")
    settings = {
        "COMMUNICATIONCONTROLLERURI": controller_url,
        "AUTOMANAGEPOOLS": "true",
        "POOLNAMESPACE": namespace,
        "WATCHNAMESPACE": namespace,
        "BROKERUSER": "fault-broker",
        "BROKERPASSWORD": BROKER_PASSWORD,
        "CONTROLLERSERVERTIMEOUTSECONDS": "3",
        "CONTROLLERKEEPALIVESECONDS": "1",
        "CONTROLLERINVOKETIMEOUTSECONDS": "5",
        "POOLREGISTRATIONRETRYSECONDS": "2",
        "SHUTDOWNDRAINSECONDS": "2",
        "HELM__BINARY": str(helm),
        "HELM__TIMEOUTSECONDS": "90",
        "HELM__FAILFASTIMAGENOTFOUNDSECONDS": "4",
        "HELM__FAILFASTIMAGEPULLSECONDS": "8",
        "HEALTH__PORT": str(health_port),
        "METRICS__PORT": str(metrics_port),
        "LOG__FORMAT": "text",
        "LOG__LEVEL": "INFO",
        **overrides,
    }
    env.update({f"OPERATOR__{key}": value for key, value in settings.items()})
    return env


@dataclass
class FaultRig:
    cluster: KubeCluster
    namespace: str
    api: client.ApiClient
    kubelet: FakeKubelet
    repo: ChartRepo
    sim: SimulatorProcess
    workdir: Path
    pool_rt_id: str
    operator: OperatorProcess | None = None
    helm_env: dict[str, str] = field(default_factory=dict)

    # --- the operator ---------------------------------------------------------------------------

    async def start_operator(self, **overrides: str) -> OperatorProcess:
        """Start ``communication-operator run`` (or start it again, with the same environment and log
        file, when ``overrides`` is empty) and wait until it has the pool registered."""
        if self.operator is None:
            assert self.sim.base_url is not None
            env = operator_env(
                self.cluster.env,
                controller_url=self.sim.base_url,
                namespace=self.namespace,
                helm=self.cluster.helm,
                health_port=free_port(),
                metrics_port=free_port(),
                workdir=self.workdir,
                **overrides,
            )
            self.operator = OperatorProcess(env, self.cluster.kubeconfig, self.workdir / "operator.log")
        elif overrides:
            raise ValueError("the environment is fixed at the first start")
        await self.operator.start()
        await self.operator.wait_connected()
        await self.wait_pool_online()
        return self.operator

    @property
    def op(self) -> OperatorProcess:
        assert self.operator is not None, "start_operator() first"
        return self.operator

    async def wait_pool_online(self, timeout: float = 30.0) -> None:
        async def online() -> bool:
            pool = await self.sim.admin.pool(self.pool_rt_id)
            return bool(pool["communicationState"] == "Online")

        await eventually(online, timeout=timeout, interval=0.1, what="the pool Online at the controller")

    # --- workloads at the controller ------------------------------------------------------------

    async def create_workload(self, name: str, **fields: Any) -> str:
        fields.setdefault("repository_url", self.repo.url)
        fields.setdefault("chart_name", "web")
        fields.setdefault("values_yaml", image_values(READY_IMAGE))
        return await self.sim.admin.create_workload(TENANT, self.pool_rt_id, name, **fields)

    async def deploys(self, workload: str) -> list[dict[str, Any]]:
        return await self.sim.admin.deploys(workload)

    async def latest_deploy(self, workload: str) -> dict[str, Any]:
        records = await self.deploys(workload)
        assert records, f"workload {workload} was never deployed"
        return records[-1]

    async def wait_final(self, workload: str, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until the workload's latest deploy has a final status; returns that deploy record."""

        async def final() -> dict[str, Any] | None:
            record = await self.latest_deploy(workload)
            return record if record["finalStatuses"] else None

        return await eventually(final, timeout=timeout, interval=0.2, what=f"a final status for {workload}")

    async def wait_progress(self, workload: str, timeout: float = 60.0) -> dict[str, Any]:
        async def progress() -> dict[str, Any] | None:
            record = await self.latest_deploy(workload)
            return record if any(r["kind"] == "progress" for r in record["reports"]) else None

        return await eventually(progress, timeout=timeout, interval=0.1, what=f"live progress for {workload}")

    # --- helm and the cluster -------------------------------------------------------------------

    def release(self, workload: str) -> str:
        return release_name(TENANT, workload)

    async def helm(self, *args: str) -> tuple[int, str, str]:
        result = await self.cluster.helm_async(*args, "-n", self.namespace, timeout=60)
        return result.returncode, result.stdout, result.stderr

    async def history(self, release: str) -> list[dict[str, Any]]:
        code, out, err = await self.helm("history", release, "-o", "json")
        if code != 0:
            assert "not found" in err, err
            return []
        return list(json.loads(out))

    async def release_status(self, release: str) -> str | None:
        history = await self.history(release)
        return str(history[-1]["status"]) if history else None

    async def releases(self) -> list[dict[str, Any]]:
        states = ("--deployed", "--failed", "--pending", "--superseded", "--uninstalling")
        code, out, err = await self.helm("list", *states, "-o", "json")
        assert code == 0, err
        return list(json.loads(out or "[]"))

    def values_dirs(self) -> list[str]:
        return sorted(p.name for p in (self.workdir / "tmp").glob(VALUES_DIR_GLOB))

    async def pool_objects(self) -> list[dict[str, Any]]:
        listing = await client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL
        )
        return list(listing["items"])

    async def release_finalizers(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        for item in await self.pool_objects():
            with contextlib.suppress(ApiException):
                await custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                    _content_type="application/merge-patch+json",
                )


@pytest.fixture
async def rig(
    kube_cluster: KubeCluster,
    namespace: str,
    kube_api: client.ApiClient,
    fake_kubelet: FakeKubelet,
    chart_repo: ChartRepo,
    pool_crd: dict[str, Any],  # noqa: F811
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[FaultRig]:
    fake_kubelet.add_rule(f"{READY_IMAGE}:*", "ready", delay=0.5)
    async with SimulatorProcess(fast_options()) as sim:
        pool_rt_id = await sim.admin.create_pool(TENANT, "fault-pool", "Cloud")
        await sim.admin.deploy_pool(pool_rt_id)
        rig = FaultRig(
            cluster=kube_cluster,
            namespace=namespace,
            api=kube_api,
            kubelet=fake_kubelet,
            repo=chart_repo,
            sim=sim,
            workdir=tmp_path,
            pool_rt_id=pool_rt_id,
        )
        try:
            yield rig
        finally:
            if rig.operator is not None:
                await rig.operator.terminate(timeout=15)
                await rig.release_finalizers()
            if _failed(request):
                # Both logs, for the failure report (pytest shows captured output of failed tests).
                if rig.operator is not None:
                    print(f"--- operator log {rig.operator.log_path} (tail) ---\n{rig.operator.log_tail(80)}")
                print(f"--- simulator log (tail) ---\n{_tail(sim.log_path, 40)}")


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "rep_call", None)
    return report is None or bool(report.failed)


def _tail(path: Path, lines: int) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
