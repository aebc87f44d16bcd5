"""Deploy throughput: workloads per minute at helm concurrency 1, 4 and 8 (``OPERATOR__HELM__MAXCONCURRENT``).

The path is the workload integration tests' one: the controller simulator pushes
``WorkloadDeployedAsync``, our hub client hands it to a :class:`WorkloadService` (bounded to the
level's concurrency), real helm 4 runs ``repo add/update``, ``history``, the server-side dry run and
``upgrade --install --wait`` against the local kube-apiserver + kube-controller-manager, the fake
kubelet marks the pods of the trivial ``web`` test chart (one Deployment, one ConfigMap) ready, and
the final status travels back through the outbox to the simulator.

Per level: N workloads are created, then all N deploy pushes are sent at once. Measured: from just
before the first push to the last ``ReportWorkloadDeploymentStatusAsync`` recorded by the simulator
(wall clock, one process). Every deploy must succeed, or the run fails. Between levels the releases are
uninstalled (not timed). A one-workload warm-up runs first (page cache, helm's repository cache
directory), so level 1 does not pay for a cold start.

Baseline: concurrency 1 in the same run (one helm at a time, like a serial deployer); the table
shows each level's ratio to it.

Run: ``.venv/bin/python -m benchmarks.deploy_throughput [--workloads 16] [--levels 1 4 8] [--node real]``
(starts a private local cluster; about 2-3 minutes on 2 cores). ``--node real``: the pods run on the
real node (containerd, kubelet, kube-scheduler) from the ``testapp`` chart (local image, HTTP readiness
probe every second), so each deploy waits for a real container start and a real probe.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

from benchmarks.local_stack import local_stack
from communication_operator.contracts import (
    ClientMethod,
    ServerMethod,
    WorkloadDeployedDto,
    WorkloadUndeployedDto,
)
from communication_operator.hub import HubConnection, HubOptions
from communication_operator.workloads.helm import HelmCli
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.secrets import ReleaseSecrets
from communication_operator.workloads.service import WorkloadService
from communication_operator.workloads.values import OperatorContext
from communication_operator.workloads.watcher import ProgressSink, ReleaseWatcher
from octo_devtools.controller_sim import SimulatorOptions, running_simulator
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.devcluster.lifecycle import NodeKind

ROOT = Path(__file__).resolve().parent.parent
TENANT = "bench"
NAMESPACE = "throughput-bench"
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def helm_cpu_seconds() -> float:
    """CPU time of this process's finished (waited-for) children: the helm runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Router:
    """One hub connection for the whole run; pushes go to the current level's service."""

    def __init__(self) -> None:
        self.service: WorkloadService | None = None

    async def deployed(self, dto: WorkloadDeployedDto) -> None:
        assert self.service is not None
        await self.service.on_workload_deployed(dto)

    async def undeployed(self, dto: WorkloadUndeployedDto) -> None:
        assert self.service is not None
        await self.service.on_workload_undeployed(dto)


CHARTS = {
    "fake": ("web", "tests/charts/web (1 Deployment with 1 pod made Ready by the fake kubelet, 1 ConfigMap)"),
    "real": ("testapp", "tests/charts/testapp (1 Deployment with 1 real pod, Ready by an HTTP probe)"),
}


async def run(workloads: int, levels: list[int], node: NodeKind = "fake") -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    helm_version = ""
    chart, chart_note = CHARTS[node]
    async with local_stack("throughput-bench-", NAMESPACE, node=node) as stack:
        toolchain, repo, api = stack.toolchain, stack.repo, stack.api
        kubelet = FakeKubelet(api, namespace=NAMESPACE) if node == "fake" else None
        if kubelet is not None:  # pods become Ready (the default behaviour)
            await kubelet.start()
            await kubelet.wait_synced()
        async with running_simulator(SimulatorOptions()) as sim:
            pool = await sim.admin.create_pool(TENANT, "site", "Edge")
            hub = HubConnection(HubOptions(url=sim.base_url))
            router = Router()

            async def register() -> None:
                await hub.invoke(ServerMethod.REGISTER_OPERATOR, False)
                await hub.invoke(ServerMethod.REGISTER_POOL, TENANT, pool)

            hub.on_connected(register)
            hub.on(ClientMethod.WORKLOAD_DEPLOYED, router.deployed)
            hub.on(ClientMethod.WORKLOAD_UNDEPLOYED, router.undeployed)
            await hub.start()
            await hub.wait_connected(10)
            helm_cli = HelmCli(binary=str(toolchain.helm), env=stack.helm_env)
            helm_version = str(await helm_cli.version())

            def make_service(concurrency: int) -> WorkloadService:
                def watcher(release: str, ns: str, sink: ProgressSink, secrets: Any) -> ReleaseWatcher:
                    return ReleaseWatcher(api, ns, release, sink, secrets=secrets)

                return WorkloadService(
                    hub,
                    helm_cli,
                    ReleaseSecrets(api),
                    watcher,
                    OperatorContext(pool_namespace=NAMESPACE),
                    WorkloadOptions(namespace=NAMESPACE, timeout_seconds=120, max_concurrent=concurrency),
                )

            async def level(name: str, concurrency: int, count: int) -> dict[str, Any]:
                service = make_service(concurrency)
                router.service = service
                ids = [
                    await sim.admin.create_workload(
                        TENANT, pool, f"{name}-{index}", repository_url=repo.url, chart_name=chart
                    )
                    for index in range(count)
                ]
                busy_before, total_before = cpu_times()
                helm_before = helm_cpu_seconds()
                started = time.time()
                for workload in ids:
                    await sim.admin.deploy_workload(workload)
                wanted = set(ids)
                await sim.admin.wait_for(
                    lambda s: all(
                        x["deploymentState"] in ("Deployed", "Error")
                        for x in s["workloads"]
                        if x["workloadRtId"] in wanted
                    ),
                    timeout=60 + 60 * count,
                    interval=0.2,
                    description=f"{count} workloads settled at concurrency {concurrency}",
                )
                statuses = [
                    c for c in await sim.admin.calls(STATUS) if c["arguments"][0]["workloadRtId"] in wanted
                ]
                failed = [c["arguments"][0] for c in statuses if not c["arguments"][0]["success"]]
                if failed or len(statuses) != count:
                    raise SystemExit(f"level {name}: {len(statuses)} statuses, failures: {failed[:3]}")
                elapsed = max(c["time"] for c in statuses) - started
                busy_after, total_after = cpu_times()
                helm_cpu = helm_cpu_seconds() - helm_before
                peak = service.scheduler.peak_running
                for workload in ids:  # clean up, not timed
                    await sim.admin.undeploy_workload(workload)
                await asyncio.sleep(0.5)
                await service.wait_idle()
                return {
                    "concurrency": concurrency,
                    "workloads": count,
                    "seconds": elapsed,
                    "per_minute": 60.0 * count / elapsed,
                    "peak_helm_runs": peak,
                    # Machine-wide, until every status arrived: 1.0 means all CPUs were busy.
                    "cpu_busy_fraction": (busy_after - busy_before) / max(total_after - total_before, 1.0),
                    "helm_cpu_seconds_per_workload": helm_cpu / count,
                }

            try:
                warm = await level("warmup", 1, 1)
                logging.info("warm-up deploy took %.1f s", warm["seconds"])
                for concurrency in levels:
                    row = await level(f"c{concurrency}", concurrency, workloads)
                    logging.info(
                        "concurrency %d: %d workloads in %.1f s (%.1f/min)",
                        concurrency,
                        workloads,
                        row["seconds"],
                        row["per_minute"],
                    )
                    rows.append(row)
            finally:
                if router.service is not None:
                    await router.service.shutdown()
                await hub.stop(drain_timeout=2)
        if kubelet is not None:
            await kubelet.stop()
    baseline = rows[0]["per_minute"] if rows and rows[0]["concurrency"] == 1 else None
    for row in rows:
        row["ratio_to_concurrency_1"] = row["per_minute"] / baseline if baseline else None
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "helm": helm_version,
        },
        "node": node,
        "chart": chart_note,
        "levels": rows,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "| concurrency | workloads | seconds | workloads/min | vs. concurrency 1 | peak helm runs "
        "| CPU busy | helm CPU s/workload |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["levels"]:
        ratio = row["ratio_to_concurrency_1"]
        lines.append(
            f"| {row['concurrency']} | {row['workloads']} | {row['seconds']:.1f} | {row['per_minute']:.1f} "
            f"| {f'{ratio:.2f}x' if ratio is not None else '-'} | {row['peak_helm_runs']} "
            f"| {row['cpu_busy_fraction']:.0%} | {row['helm_cpu_seconds_per_workload']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workloads", type=int, default=16, help="workloads deployed per level")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8], help="helm concurrency levels")
    parser.add_argument("--node", choices=("fake", "real"), default="fake", help="the local cluster's node")
    args = parser.parse_args()
    if args.workloads < 1 or any(level < 1 for level in args.levels):
        parser.error("--workloads and every --levels value must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("kubernetes_asyncio", "aiohttp", "communication_operator", "octo_devtools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    result = asyncio.run(run(args.workloads, args.levels, args.node))
    print(table(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
