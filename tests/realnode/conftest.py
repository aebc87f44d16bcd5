"""Workload deploys on the real node: the same wiring as tests/integration/workloads (simulator → hub
client → WorkloadService → real helm) against the cluster whose pods run in containerd, with the
``testapp`` chart (local image, real readiness probe). No fake kubelet: every pod status and event
is written by the real kubelet or kube-scheduler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from communication_operator.contracts import ClientMethod, ServerMethod
from communication_operator.hub import HubConnection, HubOptions
from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.helm import HelmCli
from communication_operator.workloads.secrets import ReleaseSecrets
from communication_operator.workloads.service import WorkloadOptions, WorkloadService
from communication_operator.workloads.signals import FailFastPolicy
from communication_operator.workloads.values import OperatorContext
from communication_operator.workloads.watcher import ProgressSink, ReleaseWatcher
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import ChartRepo, KubeCluster
from tests.integration.workloads.conftest import BROKER_PASSWORD, TENANT, Deployer, _releases

#: Real pods take real time: helm gets a minute (fail-fast must beat it clearly).
NODE_HELM_TIMEOUT = 60.0

#: The integration suite's policy with real-kubelet timing: the kubelet backs off 10 s, 20 s, 40 s
#: between restarts, so two restarts (about 30 s) make the crash loop fatal.
NODE_POLICY = FailFastPolicy(
    hard_image_pull_grace_seconds=3.0,
    image_pull_grace_seconds=10.0,
    crash_loop_restarts=2,
    config_error_grace_seconds=3.0,
    unschedulable_grace_seconds=3.0,
)

NodeDeployerFactory = Callable[..., Awaitable[Deployer]]


@pytest.fixture
async def node_deployer(
    real_node_cluster: KubeCluster,
    node_namespace: str,
    node_api: client.ApiClient,
    chart_repo: ChartRepo,
    controller_sim: RunningSimulator,
    tmp_path: Path,
) -> AsyncIterator[NodeDeployerFactory]:
    made: list[Deployer] = []

    async def make(
        *,
        policy: FailFastPolicy = NODE_POLICY,
        max_concurrent: int = 4,
        metrics: OperatorMetrics | None = None,
        timeout_seconds: float = NODE_HELM_TIMEOUT,
    ) -> Deployer:
        pool_rt_id = await controller_sim.admin.create_pool(TENANT, f"node-{len(made)}", "Edge")
        homes = tmp_path / f"helm-home-{len(made)}"
        env = {
            **real_node_cluster.env,
            "HELM_CACHE_HOME": str(homes / "cache"),
            "HELM_CONFIG_HOME": str(homes / "config"),
            "HELM_DATA_HOME": str(homes / "data"),
        }
        helm_cli = HelmCli(binary=str(real_node_cluster.helm), env=env, kill_grace=10.0)
        hub = HubConnection(
            HubOptions(url=controller_sim.base_url, keepalive_interval=0.5, server_timeout=3.0)
        )
        watchers: list[ReleaseWatcher] = []

        def watcher(release: str, ns: str, sink: ProgressSink, secrets: Any) -> ReleaseWatcher:
            created = ReleaseWatcher(
                node_api,
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
            ReleaseSecrets(node_api),
            watcher,
            OperatorContext(
                pool_namespace=node_namespace, broker_password=BROKER_PASSWORD, instance_prefix="it"
            ),
            WorkloadOptions(
                namespace=node_namespace,
                timeout_seconds=timeout_seconds,
                history_max=3,
                max_concurrent=max_concurrent,
                fail_fast=policy,
            ),
            metrics=metrics,
        )

        async def register() -> None:
            await hub.invoke(ServerMethod.REGISTER_OPERATOR, False)
            await hub.invoke(ServerMethod.REGISTER_POOL, TENANT, pool_rt_id)

        hub.on_connected(register)
        hub.on(ClientMethod.WORKLOAD_DEPLOYED, service.on_workload_deployed)
        hub.on(ClientMethod.WORKLOAD_UNDEPLOYED, service.on_workload_undeployed)
        await hub.start()
        await hub.wait_connected(10)
        made_deployer = Deployer(
            controller_sim,
            hub,
            service,
            helm_cli,
            env,
            real_node_cluster.helm,
            node_namespace,
            pool_rt_id,
            chart_repo,
            node_api,
            watchers,
        )
        made.append(made_deployer)
        return made_deployer

    yield make
    for item in made:
        await item.service.shutdown()
        await item.hub.stop(drain_timeout=2.0)
        for release in await _releases(item):
            await item.helm_cmd("uninstall", release, "-n", node_namespace, "--no-hooks")


def values_for_testapp(*args: str, **resources: dict[str, str]) -> str:
    """``valuesYaml`` for the ``testapp`` chart: its command and resources (overrides are strings)."""
    values: dict[str, Any] = {}
    if args:
        values["args"] = list(args)
    if resources:
        values["resources"] = resources
    return yaml.safe_dump(values)
