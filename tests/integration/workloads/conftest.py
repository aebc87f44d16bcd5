"""Workload deploys end to end: controller simulator → our hub client → WorkloadService → real helm →
the local kube-apiserver, with the fake kubelet playing the pods and the loopback chart repository.

``deployer`` (fixture) builds a :class:`Deployer` for this test's namespace: a hub connection that
registers one Edge pool with the simulator, and a WorkloadService running the chosen helm binary
(``await deployer(helm="helm3")``), with short timeouts and fail-fast grace periods; pass
``metrics=OperatorMetrics()`` to have the service and its watchers record into it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from communication_operator.contracts import ClientMethod, ServerMethod
from communication_operator.hub import HubConnection, HubOptions
from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.helm import HelmCli
from communication_operator.workloads.naming import release_name
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.replicas import KubeReplicaReader
from communication_operator.workloads.rollout import KubeRolloutReader
from communication_operator.workloads.scale import KubeReplicaPatcher, ScaleHandler
from communication_operator.workloads.secrets import ReleaseSecrets
from communication_operator.workloads.service import WorkloadService
from communication_operator.workloads.signals.policy import FailFastPolicy
from communication_operator.workloads.values import ClusterSecrets, OperatorContext
from communication_operator.workloads.watcher import ProgressSink, ReleaseWatcher
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import ChartRepo, KubeCluster

TENANT = "acme"
BROKER_PASSWORD = "broker-pa55-w0rd-xyz"
HELM_TIMEOUT = 30.0

#: Fast enough for tests, still exercising each rule (a pull error "not found" is hard: 3 s).
TEST_POLICY = FailFastPolicy(
    hard_image_pull_grace_seconds=3.0,
    image_pull_grace_seconds=10.0,
    crash_loop_restarts=3,
    config_error_grace_seconds=3.0,
    unschedulable_grace_seconds=3.0,
)


@dataclass
class Deployer:
    sim: RunningSimulator
    hub: HubConnection
    service: WorkloadService
    helm: HelmCli
    helm_env: dict[str, str]
    helm_binary: Path
    namespace: str
    pool_rt_id: str
    repo: ChartRepo
    api: client.ApiClient
    watchers: list[ReleaseWatcher] = field(default_factory=list)
    scaler: ScaleHandler | None = None

    async def create(self, name: str = "web", **fields: Any) -> str:
        fields.setdefault("repository_url", self.repo.url)
        fields.setdefault("chart_name", "web")
        return await self.sim.admin.create_workload(TENANT, self.pool_rt_id, name, **fields)

    async def deploy(self, name: str = "web", **fields: Any) -> str:
        workload = await self.create(name, **fields)
        await self.sim.admin.deploy_workload(workload)
        return workload

    def release(self, workload: str) -> str:
        return release_name(TENANT, workload)

    async def state_of(self, workload: str) -> dict[str, Any]:
        return await self.sim.admin.workload(workload)

    async def wait_settled(self, workload: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the workload is Deployed or Error in the simulator; returns it."""

        def settled(state: dict[str, Any]) -> dict[str, Any] | None:
            for item in state["workloads"]:
                if item["workloadRtId"] == workload and item["deploymentState"] in ("Deployed", "Error"):
                    return dict(item)
            return None

        return await self.sim.admin.wait_for(
            settled, timeout=timeout, interval=0.1, description=f"{workload} settled"
        )

    async def reports(self, workload: str) -> list[tuple[str, str, float]]:
        """(method, text, arrival time) of every progress/status report of ``workload`` at the simulator."""
        result = []
        for call in await self.sim.admin.calls():
            if call["method"] not in (
                ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS,
                ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS,
            ):
                continue
            body = call["arguments"][0]
            if body.get("workloadRtId") != workload:
                continue
            text = body.get("message") if "message" in body else body.get("statusMessage")
            result.append((call["method"], text or "", call["time"]))
        return result

    async def helm_cmd(self, *args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            str(self.helm_binary), *args, env=self.helm_env, stdout=-1, stderr=-1
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def history(self, release: str) -> list[dict[str, Any]]:
        code, out, err = await self.helm_cmd("history", release, "-n", self.namespace, "-o", "json")
        if code != 0:
            assert "not found" in err, err
            return []
        return list(json.loads(out))

    async def release_record_labels(self, release: str) -> dict[str, str]:
        secrets = await client.CoreV1Api(self.api).list_namespaced_secret(
            self.namespace, label_selector=f"owner=helm,name={release},status=deployed"
        )
        assert len(secrets.items) == 1, [s.metadata.name for s in secrets.items]
        return dict(secrets.items[0].metadata.labels)


DeployerFactory = Callable[..., Awaitable[Deployer]]


@pytest.fixture
async def deployer(
    kube_cluster: KubeCluster,
    namespace: str,
    kube_api: client.ApiClient,
    fake_kubelet: Any,
    chart_repo: ChartRepo,
    controller_sim: RunningSimulator,
    tmp_path: Path,
) -> AsyncIterator[DeployerFactory]:
    made: list[Deployer] = []

    async def make(
        *,
        helm: str = "helm",
        policy: FailFastPolicy = TEST_POLICY,
        max_concurrent: int = 4,
        metrics: OperatorMetrics | None = None,
        platform_namespace: str = "",
        cluster_secrets: ClusterSecrets | None = None,
        force_conflicts: bool = False,
        sim: Any = None,
        **options: Any,
    ) -> Deployer:
        made_deployer = await build_deployer(
            sim=sim or controller_sim,  # or a SimulatorProcess (same admin API), for kill -9 scenarios
            pool_name=f"site-{len(made)}",
            cluster_env=kube_cluster.env,
            binary=Path(getattr(kube_cluster, "helm3" if helm == "helm3" else "helm")),
            api=kube_api,
            namespace=namespace,
            chart_repo=chart_repo,
            helm_home=tmp_path / f"helm-home-{len(made)}",
            policy=policy,
            max_concurrent=max_concurrent,
            metrics=metrics,
            timeout_seconds=options.pop("timeout_seconds", HELM_TIMEOUT),
            platform_namespace=platform_namespace,
            cluster_secrets=cluster_secrets,
            force_conflicts=force_conflicts,
        )
        made.append(made_deployer)
        return made_deployer

    yield make
    await close_deployers(made)


async def build_deployer(
    *,
    sim: Any,
    pool_name: str,
    cluster_env: dict[str, str],
    binary: Path,
    api: client.ApiClient,
    namespace: str,
    chart_repo: ChartRepo,
    helm_home: Path,
    policy: FailFastPolicy,
    max_concurrent: int,
    metrics: OperatorMetrics | None,
    timeout_seconds: float,
    platform_namespace: str = "",
    cluster_secrets: ClusterSecrets | None = None,
    force_conflicts: bool = False,
) -> Deployer:
    """The operator's workload wiring (hub client → WorkloadService and scale handler → real helm) for
    one Edge pool of ``sim``, connected and registered; shared by this suite and tests/realnode."""
    pool_rt_id = await sim.admin.create_pool(TENANT, pool_name, "Edge")
    env = {
        **cluster_env,
        "HELM_CACHE_HOME": str(helm_home / "cache"),
        "HELM_CONFIG_HOME": str(helm_home / "config"),
        "HELM_DATA_HOME": str(helm_home / "data"),
    }
    helm_cli = HelmCli(binary=str(binary), env=env, kill_grace=10.0)
    hub = HubConnection(HubOptions(url=sim.base_url, keepalive_interval=0.5, server_timeout=3.0))
    watchers: list[ReleaseWatcher] = []

    def watcher(release: str, ns: str, sink: ProgressSink, secrets: Any) -> ReleaseWatcher:
        created = ReleaseWatcher(
            api,
            ns,
            release,
            sink,
            policy=policy,
            secrets=secrets,
            on_latency=metrics.observe_signal_to_report if metrics is not None else None,
        )
        watchers.append(created)
        return created

    service = WorkloadService(
        hub,
        helm_cli,
        ReleaseSecrets(api),
        watcher,
        OperatorContext(
            pool_namespace=namespace,
            broker_password=BROKER_PASSWORD,
            instance_prefix="it",
            cluster_secrets=cluster_secrets or ClusterSecrets(),
        ),
        WorkloadOptions(
            namespace=namespace,
            platform_namespace=platform_namespace,
            force_conflicts=force_conflicts,
            timeout_seconds=timeout_seconds,
            history_max=3,
            max_concurrent=max_concurrent,
            fail_fast=policy,
        ),
        metrics=metrics,
        replicas=KubeReplicaReader(api),
        rollouts=KubeRolloutReader(api),
    )

    async def register() -> None:
        await hub.invoke(ServerMethod.REGISTER_OPERATOR, False)
        await hub.invoke(ServerMethod.REGISTER_POOL, TENANT, pool_rt_id)

    hub.on_connected(register)
    hub.on(ClientMethod.WORKLOAD_DEPLOYED, service.on_workload_deployed)
    hub.on(ClientMethod.WORKLOAD_UNDEPLOYED, service.on_workload_undeployed)
    scaler = ScaleHandler(service, hub, KubeReplicaPatcher(api), metrics=metrics)
    hub.on(ClientMethod.SCALE_WORKLOAD, scaler.on_scale_workload)
    await hub.start()
    await hub.wait_connected(10)
    return Deployer(
        sim, hub, service, helm_cli, env, binary, namespace, pool_rt_id, chart_repo, api, watchers, scaler
    )


async def close_deployers(made: list[Deployer]) -> None:
    """Stop each deployer's service and hub, then uninstall what its tests left (hooks skipped)."""
    for item in made:
        await item.service.shutdown()
        await item.hub.stop(drain_timeout=2.0)
        for release in await _releases(item):
            await item.helm_cmd("uninstall", release, "-n", item.namespace, "--no-hooks")


async def _releases(item: Deployer) -> list[str]:
    code, out, _ = await item.helm_cmd("list", "-n", item.namespace, "-a", "-o", "json")
    if code != 0:
        code, out, _ = await item.helm_cmd("list", "-n", item.namespace, "-o", "json")
    return [entry["name"] for entry in json.loads(out or "[]")] if code == 0 else []


def secret_free_logs(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    text = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in text, f"a secret leaked into the logs: {secret[:3]}…"


logging.getLogger("kubernetes_asyncio").setLevel(logging.INFO)
