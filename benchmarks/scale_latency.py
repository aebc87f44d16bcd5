"""Scale verb latency: ``ScaleWorkloadAsync`` push → ``ReportWorkloadScaleStatusAsync`` at the controller,
against a raw Deployment patch in the same run.

One workload of the ``web`` test chart is deployed with the real helm 4 on a private local cluster;
then ``--scales`` scales alternate 0 and 1 through the whole path: the simulator's admin request
pushes ``ScaleWorkloadAsync``, our hub client hands it to the ScaleHandler, which queues it on the
release, lists and merge-patches the Deployment, and acknowledges through the outbox.

Measured per scale (wall clock, one process, one clock):

* ours — from just before the admin request that makes the simulator push, to the simulator
  recording the ack;
* raw — the same merge patch of ``spec.replicas`` sent directly with kubernetes-asyncio (one PATCH,
  no list, no hub), alternating 0 and 1 on the same Deployment: the floor of any scale.

Run: ``.venv/bin/python -m benchmarks.scale_latency [--scales 40]`` (starts a private local cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from typing import Any

from kubernetes_asyncio import client

from benchmarks.local_stack import local_stack
from communication_operator.contracts import ClientMethod, ServerMethod
from communication_operator.hub import HubConnection, HubOptions
from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.helm import HelmCli
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.scale import (
    FIELD_MANAGER,
    MERGE_PATCH,
    KubeReplicaPatcher,
    ScaleHandler,
)
from communication_operator.workloads.secrets import ReleaseSecrets
from communication_operator.workloads.service import WorkloadService
from communication_operator.workloads.values import OperatorContext
from communication_operator.workloads.watcher import ProgressSink, ReleaseWatcher
from octo_devtools.controller_sim import SimulatorOptions, running_simulator
from octo_devtools.devcluster.kubelet import FakeKubelet

TENANT = "bench"
NAMESPACE = "scale-bench"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _acks_at_least(count: int) -> Any:
    def enough(state: dict[str, Any]) -> list[dict[str, Any]] | None:
        reports: list[dict[str, Any]] = state["scaleReports"]
        return reports if len(reports) >= count else None

    return enough


async def run(scales: int) -> dict[str, Any]:
    async with local_stack("scale-bench-", NAMESPACE) as stack:
        toolchain, env, repo, api = stack.toolchain, stack.env, stack.repo, stack.api
        kubelet = FakeKubelet(api, namespace=NAMESPACE)
        await kubelet.start()
        await kubelet.wait_synced()
        metrics = OperatorMetrics()
        async with running_simulator(SimulatorOptions()) as sim:
            pool = await sim.admin.create_pool(TENANT, "site", "Edge")
            hub = HubConnection(HubOptions(url=sim.base_url))

            def watcher(release: str, ns: str, sink: ProgressSink, secrets: Any) -> ReleaseWatcher:
                return ReleaseWatcher(api, ns, release, sink, secrets=secrets)

            service = WorkloadService(
                hub,
                HelmCli(binary=str(toolchain.helm), env=env),
                ReleaseSecrets(api),
                watcher,
                OperatorContext(pool_namespace=NAMESPACE),
                WorkloadOptions(namespace=NAMESPACE, timeout_seconds=60),
            )
            scaler = ScaleHandler(service, hub, KubeReplicaPatcher(api), metrics=metrics)

            async def register() -> None:
                await hub.invoke(ServerMethod.REGISTER_OPERATOR, False)
                await hub.invoke(ServerMethod.REGISTER_POOL, TENANT, pool)

            hub.on_connected(register)
            hub.on(ClientMethod.WORKLOAD_DEPLOYED, service.on_workload_deployed)
            hub.on(ClientMethod.SCALE_WORKLOAD, scaler.on_scale_workload)
            await hub.start()
            await hub.wait_connected(10)
            ours: list[float] = []
            raw: list[float] = []
            try:
                workload = await sim.admin.create_workload(
                    TENANT, pool, "web", repository_url=repo.url, chart_name="web"
                )
                await sim.admin.deploy_workload(workload)
                await sim.admin.wait_for(
                    lambda s: any(w["deploymentState"] == "Deployed" for w in s["workloads"]), timeout=60
                )
                deployment = f"{TENANT}-{workload}-web"
                apps: Any = client.AppsV1Api(api)
                for index in range(scales):
                    replicas = 0 if index % 2 == 0 else 1
                    started = time.time()
                    await sim.admin.scale_workload(workload, replicas)
                    acks: list[dict[str, Any]] = await sim.admin.wait_for(
                        _acks_at_least(index + 1), timeout=30, interval=0.005
                    )
                    assert acks[-1]["success"], acks[-1]
                    ack_call = (await sim.admin.calls(ServerMethod.REPORT_WORKLOAD_SCALE_STATUS))[-1]
                    ours.append(ack_call["time"] - started)
                for index in range(scales):
                    started = time.time()
                    await apps.patch_namespaced_deployment(
                        deployment,
                        NAMESPACE,
                        {"spec": {"replicas": index % 2}},
                        field_manager=FIELD_MANAGER,
                        _content_type=MERGE_PATCH,
                    )
                    raw.append(time.time() - started)
                logging.info("%d scales through the operator, %d raw patches", len(ours), len(raw))
            finally:
                await service.shutdown()
                await hub.stop(drain_timeout=2)
        await kubelet.stop()
    histogram = metrics.exposition().decode()
    return {
        "scales": scales,
        "ours_p50_s": percentile(ours, 0.5),
        "ours_p95_s": percentile(ours, 0.95),
        "ours_max_s": max(ours),
        "raw_patch_p50_s": percentile(raw, 0.5),
        "raw_patch_p95_s": percentile(raw, 0.95),
        "overhead_p50_s": percentile(ours, 0.5) - percentile(raw, 0.5),
        "push_to_ack_metric_count": next(
            (
                line.split()[-1]
                for line in histogram.splitlines()
                if line.startswith("communication_operator_scale_push_to_ack_seconds_count")
            ),
            None,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, default=40)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("kubernetes_asyncio", "aiohttp", "communication_operator", "octo_devtools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(json.dumps(asyncio.run(run(args.scales)), indent=2))


if __name__ == "__main__":
    main()
