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

from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.signals.policy import FailFastPolicy
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import ChartRepo, KubeCluster
from tests.integration.workloads.conftest import Deployer, build_deployer, close_deployers

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
        made_deployer = await build_deployer(
            sim=controller_sim,
            pool_name=f"node-{len(made)}",
            cluster_env=real_node_cluster.env,
            binary=real_node_cluster.helm,
            api=node_api,
            namespace=node_namespace,
            chart_repo=chart_repo,
            helm_home=tmp_path / f"helm-home-{len(made)}",
            policy=policy,
            max_concurrent=max_concurrent,
            metrics=metrics,
            timeout_seconds=timeout_seconds,
        )
        made.append(made_deployer)
        return made_deployer

    yield make
    await close_deployers(made)


def values_for_testapp(*args: str, **resources: dict[str, str]) -> str:
    """``valuesYaml`` for the ``testapp`` chart: its command and resources (overrides are strings)."""
    values: dict[str, Any] = {}
    if args:
        values["args"] = list(args)
    if resources:
        values["resources"] = resources
    return yaml.safe_dump(values)
