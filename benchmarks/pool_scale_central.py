"""Central mode at scale (``python -m benchmarks.pool_scale --scenario burst|releases``).

A real ``communication-operator run`` process in central mode (``AUTOMANAGEPOOLS=true``), wrapped in
:mod:`benchmarks.loop_probe` so that its event loop's lag is measured inside the process, the controller
simulator as a child process, and the local API server.

``burst``: the controller deploys ``--pools`` (300) pools at once while ``--workloads`` (30) workloads
deploy through real helm 4 in three other pools (the fake kubelet makes their pods Ready). Measured:
from just before the first ``PoolDeployedAsync`` to the simulator accepting the last pool's
``RegisterPoolAsync`` (every CR then exists and is Online). Baseline, same run, under the same helm
load: a bare client creating the same objects the operator creates for a pool (the broker secret, then
the CommunicationPool), one pool after another like the operator handles pushes, until a plain watch
has seen the last CommunicationPool. Also counted: ``ReportDeployedStateAsync`` calls and Secret
listings (the API server's own ``apiserver_request_total``) during the burst.

``releases``: ``--release-records`` (200) helm release records of ``--record-kb`` (50) KB each in the
pool namespace (Secrets shaped exactly like helm's, labels included, so the reverse sync matches them),
then ``--pools`` (1,000) pools deployed at once, a controller restart (``fault restart``) and a tenant
pre-update of ``--pre-update-pools`` (100) of them. Measured: the operator's peak RSS (``VmHWM``), its
worst event-loop lag, the time of each phase, listings and reports. Targets: RSS under 150 MB, no
stall past 1 s (of the loop's own making: see :mod:`benchmarks.loop_probe`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from benchmarks.local_stack import local_stack
from benchmarks.loop_probe import LoopLag
from benchmarks.pool_scale import (
    NAMESPACE,
    TARGET_RSS_MB,
    AddedWatch,
    CpuMeter,
    OperatorProcess,
    bounded,
    cpu_seconds,
    install_crd,
    machine_busy_seconds,
    operator_process,
    registrations_since,
)
from communication_operator.contracts import ServerMethod
from communication_operator.pools import GROUP, PLURAL, VERSION, PoolKey
from communication_operator.pools.naming import broker_secret_name, pool_labels, pool_resource_name
from octo_devtools.controller_sim import AdminClient, SimulatorOptions, SimulatorProcess
from octo_devtools.devcluster.kubelet import FakeKubelet

TENANT = "bench"
PRE_UPDATE_TENANT = "preupdate"
BASELINE_NAMESPACE = "pool-scale-baseline"
TARGET_BURST_S = 5.0
TARGET_LOOP_S = 1.0
REPORT = ServerMethod.REPORT_DEPLOYED_STATE
DEPLOYS_IN_FLIGHT = 16  # admin requests to the simulator at once (each one broadcasts a push)


def burst_rt_id(index: int) -> str:
    return f"c0c0{index:020x}"


def workload_pool_rt_id(index: int) -> str:
    return f"d0d0{index:020x}"


def probed_command(lag_file: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.loop_probe", str(lag_file), "run"]


def central_env(helm_env: dict[str, str], helm_binary: str) -> dict[str, str]:
    return {
        "OPERATOR__AUTOMANAGEPOOLS": "true",
        "OPERATOR__BROKERUSER": "bench-broker",
        "OPERATOR__BROKERPASSWORD": "bench-broker-password",
        "OPERATOR__HELM__BINARY": helm_binary,
        "OPERATOR__HELM__TIMEOUTSECONDS": "120",
        "OPERATOR__PREUPDATETENANTDELAYSECONDS": "1",
        **{k: v for k, v in helm_env.items() if k.startswith("HELM_") or k == "PATH"},
    }


@dataclass(frozen=True)
class Listings:
    """Namespaced LIST requests the API server has served (its ``apiserver_request_total``)."""

    secrets: float = 0.0
    pools: float = 0.0

    def __sub__(self, other: Listings) -> Listings:
        return Listings(self.secrets - other.secrets, self.pools - other.pools)


async def listings(api: client.ApiClient) -> Listings:
    """Secret and CommunicationPool listings so far."""
    response = await api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=30
    )
    counts = {"secrets": 0.0, PLURAL: 0.0}
    for line in (await response.read()).decode().splitlines():
        # code 200 only: the 1.20 API server counts a custom object GET that finds nothing as a LIST (404).
        if (
            line.startswith("apiserver_request_total{")
            and 'verb="LIST"' in line
            and 'scope="namespace"' in line
            and 'code="200"' in line
        ):
            for resource in counts:
                if f'resource="{resource}"' in line:
                    counts[resource] += float(line.rsplit(" ", 1)[1])
    return Listings(counts["secrets"], counts[PLURAL])


async def calls_since(admin: AdminClient, method: ServerMethod, since: float) -> list[dict[str, Any]]:
    return [c for c in await admin.calls(method) if c["time"] >= since]


async def wait_reported(admin: AdminClient, since: float, rt_ids: set[str], timeout: float) -> float:
    """Time of the first report (at or after ``since``) by which every one of ``rt_ids`` was reported."""
    deadline = time.monotonic() + timeout
    while True:
        seen: set[str] = set()
        for call in await calls_since(admin, REPORT, since):
            seen.update(p["poolRtId"] for p in call["arguments"][0])
            if rt_ids <= seen:
                return float(call["time"])
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(rt_ids - seen)} of {len(rt_ids)} pools not reported within {timeout:g} s"
            )
        await asyncio.sleep(0.25)


async def deploy_pools(admin: AdminClient, rt_ids: Iterable[str]) -> None:
    await bounded((functools.partial(admin.deploy_pool, r) for r in rt_ids), DEPLOYS_IN_FLIGHT)


@contextlib.asynccontextmanager
async def simulator() -> AsyncIterator[SimulatorProcess]:
    sim = SimulatorProcess(SimulatorOptions())
    sim.options = dataclasses.replace(sim.options, state_file=None)  # see pool_scale's docstring
    async with sim:
        yield sim


@dataclass
class ProcessFigures:
    rss_idle: float = 0.0
    hwm: float = 0.0
    lag: LoopLag = field(default_factory=LoopLag)
    log: str = ""

    def finish(self, operator: OperatorProcess, lag_file: Path) -> None:
        _, self.hwm = operator.memory_mb()
        if lag_file.exists():
            self.lag = LoopLag.read(lag_file)
        self.log = str(operator.log_path)


# -- burst --------------------------------------------------------------------------------------------


@dataclass
class BurstFigures:
    pools: int
    workloads: int
    ours: float = 0.0  # first pool deploy -> last pool Online
    baseline: float = 0.0  # first bare create -> watch saw the last CommunicationPool (serial creates)
    quiet_baseline: float = 0.0  # the same, DEPLOYS_IN_FLIGHT pools at a time, nothing else running
    quiet: float = 0.0  # the same burst with no workload deploying (reference)
    reports: int = 0
    listings: Listings = field(default_factory=Listings)  # helm's own secret listings included
    quiet_reports: int = 0
    quiet_listings: Listings = field(default_factory=Listings)
    registrations: int = 0
    reported_by: float = 0.0  # first pool deploy -> every pool reported
    workloads_deployed: int = 0
    cpu: str = ""
    process: ProcessFigures = field(default_factory=ProcessFigures)


async def bare_create(api: client.ApiClient, indices: range, in_flight: int = 1) -> float:
    """The floor: the operator's objects for the pools ``indices``, created by a plain client (one pool
    after another, or ``in_flight`` pools at a time) in a namespace nobody handles, until a watch has
    seen every CommunicationPool."""
    core: Any = client.CoreV1Api(api)
    custom: Any = client.CustomObjectsApi(api)
    watch = AddedWatch(api, namespace=BASELINE_NAMESPACE)
    await watch.start()
    names = [pool_resource_name(PoolKey(TENANT, burst_rt_id(index))) for index in indices]

    async def create(index: int) -> None:
        key = PoolKey(TENANT, burst_rt_id(index))
        name = pool_resource_name(key)
        secret = {
            "metadata": {"name": broker_secret_name(name), "labels": pool_labels(key)},
            "stringData": {"brokerusername": "u", "brokerpassword": "p"},
        }
        await core.create_namespaced_secret(BASELINE_NAMESPACE, secret)
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CommunicationPool",
            "metadata": {"name": name, "labels": pool_labels(key)},
            "spec": {"tenantId": TENANT, "poolRtId": key.pool_rt_id},
        }
        await custom.create_namespaced_custom_object(GROUP, VERSION, BASELINE_NAMESPACE, PLURAL, body)

    try:
        started = time.time()
        await bounded((functools.partial(create, index) for index in indices), in_flight)
        await watch.wait_for(names, 120)
        return max(watch.added[n] for n in names) - started
    finally:
        await watch.stop()


async def deploy_workloads(admin: AdminClient, ids: list[str]) -> Callable[[], Awaitable[int]]:
    """Push every deploy now; returns a wait for all of them to settle (the number Deployed)."""
    since = time.time()
    for workload in ids:
        await admin.deploy_workload(workload)

    async def settled() -> int:
        deadline = time.monotonic() + 300
        while True:
            statuses = await calls_since(admin, ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, since)
            done = {c["arguments"][0]["workloadRtId"]: c["arguments"][0]["success"] for c in statuses}
            if set(ids) <= done.keys():
                return sum(1 for w in ids if done[w])
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(set(ids) - done.keys())} workloads did not settle in 300 s")
            await asyncio.sleep(0.5)

    return settled


async def run_burst(pools: int, workloads: int, operator_env: dict[str, str]) -> BurstFigures:
    figures = BurstFigures(pools=pools, workloads=workloads)
    lag_file = Path(tempfile.mkdtemp(prefix="pool-burst-")) / "loop-lag.json"
    async with local_stack("pool-burst-", NAMESPACE) as stack:
        api = stack.api
        await install_crd(api)
        core: Any = client.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": BASELINE_NAMESPACE}})
        kubelet = FakeKubelet(api, namespace=NAMESPACE)
        await kubelet.start()
        await kubelet.wait_synced()
        try:
            async with simulator() as sim:
                admin = sim.admin
                assert sim.base_url is not None
                assert sim.pid is not None
                workload_pools = [workload_pool_rt_id(i) for i in range(3)]
                burst = [burst_rt_id(i) for i in range(pools)]
                quiet = [burst_rt_id(pools + i) for i in range(pools)]
                for rt_id in workload_pools:
                    await admin.create_pool(TENANT, rt_id, "Cloud", pool_rt_id=rt_id)
                await bounded(
                    (
                        functools.partial(admin.create_pool, TENANT, r, "Cloud", pool_rt_id=r)
                        for r in [*burst, *quiet]
                    ),
                    8,
                )
                ids = [
                    await admin.create_workload(
                        TENANT,
                        workload_pools[i % len(workload_pools)],
                        f"web-{i}",
                        repository_url=stack.repo.url,
                        chart_name="web",
                    )
                    for i in range(workloads)
                ]
                env = {
                    **central_env(stack.helm_env, str(stack.toolchain.helm)),
                    **operator_env,
                }
                kubeconfig = Path(stack.env["KUBECONFIG"])
                async with operator_process(
                    kubeconfig, sim.base_url, env, command=probed_command(lag_file)
                ) as operator:
                    await asyncio.sleep(2.0)
                    figures.process.rss_idle, _ = operator.memory_mb()
                    started = time.time()
                    await deploy_pools(admin, workload_pools)
                    await registrations_since(admin, started, set(workload_pools), 60)
                    print(f"operator pid {operator.pid} (central) up; workload pools Online")

                    # The same burst with nothing else going on, for reference.
                    figures.quiet_baseline = await bare_create(
                        api, range(pools, 2 * pools), DEPLOYS_IN_FLIGHT
                    )
                    listed = await listings(api)
                    began = time.time()
                    await deploy_pools(admin, quiet)
                    online = await registrations_since(admin, began, set(quiet), 600)
                    figures.quiet = max(online.values()) - began
                    await wait_reported(admin, began, set(quiet), 120)
                    await asyncio.sleep(1.0)
                    figures.quiet_listings = await listings(api) - listed
                    figures.quiet_reports = len(await calls_since(admin, REPORT, began))
                    print(f"quiet burst of {pools}: {figures.quiet:.2f} s")

                    # Baseline under the helm load.
                    settled = await deploy_workloads(admin, ids)
                    figures.baseline = await bare_create(api, range(pools))
                    await settled()
                    print(f"baseline (bare creates under {workloads} deploys): {figures.baseline:.2f} s")

                    # Ours under the same load (every workload deploys again: helm upgrade).
                    await asyncio.sleep(1.0)
                    cpu = CpuMeter({"operator": operator.pid, "simulator": sim.pid})
                    listed = await listings(api)
                    cpu.start()
                    began = time.time()
                    settled = await deploy_workloads(admin, ids)
                    await deploy_pools(admin, burst)
                    online = await registrations_since(admin, began, set(burst), 600)
                    figures.ours = max(online.values()) - began
                    figures.reported_by = await wait_reported(admin, began, set(burst), 120) - began
                    cpu.stop()
                    figures.cpu = cpu.describe()
                    figures.workloads_deployed = await settled()
                    await asyncio.sleep(1.0)
                    figures.listings = await listings(api) - listed
                    figures.reports = len(await calls_since(admin, REPORT, began))
                    figures.registrations = len(await calls_since(admin, ServerMethod.REGISTER_POOL, began))
                    await asyncio.sleep(WRITE_SETTLE)
                    figures.process.finish(operator, lag_file)
        finally:
            await kubelet.stop()
    return figures


# Let the loop probe write its last figures.
WRITE_SETTLE = 1.0


def report_burst(figures: BurstFigures) -> list[str]:
    n, w = figures.pools, figures.workloads
    lag = figures.process.lag
    rows = [
        ("measure", "ours", "baseline", "ratio", "target"),
        (
            f"{n} pools deployed at once -> all CRs Online ({w} workloads deploying)",
            f"{figures.ours:.2f} s",
            f"{figures.baseline:.2f} s (bare secret+CR creates -> watch)",
            f"{figures.ours / figures.baseline:.2f}",
            f"< {TARGET_BURST_S:g} s",
        ),
        (
            f"{n} pools at once, nothing else deploying",
            f"{figures.quiet:.2f} s",
            f"{figures.quiet_baseline:.2f} s (the same, {DEPLOYS_IN_FLIGHT} pools at a time)",
            f"{figures.quiet / figures.quiet_baseline:.2f}",
            "",
        ),
        (f"-> every pool reported ({w} deploying)", f"{figures.reported_by:.2f} s", "", "", ""),
        ("ReportDeployedStateAsync calls", f"{figures.reports}", f"{n} pools", "", ""),
        ("Secret listings (helm's included)", f"{figures.listings.secrets:.0f}", "", "", ""),
        ("CommunicationPool listings", f"{figures.listings.pools:.0f}", "", "", ""),
        ("quiet burst: reports", f"{figures.quiet_reports}", f"{n} pools", "", ""),
        (
            "quiet burst: Secret / CommunicationPool listings",
            f"{figures.quiet_listings.secrets:.0f} / {figures.quiet_listings.pools:.0f}",
            "",
            "",
            "",
        ),
        ("RegisterPoolAsync calls", f"{figures.registrations}", "", "", ""),
        ("workloads Deployed", f"{figures.workloads_deployed} of {w}", "", "", ""),
        (
            "operator peak RSS (VmHWM)",
            f"{figures.process.hwm:.1f} MB",
            f"{figures.process.rss_idle:.1f} MB idle",
            "",
            f"< {TARGET_RSS_MB:g} MB",
        ),
        ("worst event-loop lag (wall clock)", f"{lag.max_lag:.3f} s", f"{lag.samples} samples", "", ""),
        (
            "worst event-loop lag (its own CPU)",
            f"{lag.max_own_lag:.3f} s",
            "",
            "",
            f"< {TARGET_LOOP_S:g} s",
        ),
    ]
    print_rows(rows)
    print(f"loop lag over 0.1/0.25/0.5/1 s: {lag.over}")
    print(f"CPU during the burst: {figures.cpu}")
    print(f"operator log: {figures.process.log}")
    missed = []
    if figures.ours >= TARGET_BURST_S:
        missed.append(f"burst {figures.ours:.2f} s (target < {TARGET_BURST_S:g} s)")
    missed += process_targets(figures.process)
    return missed


# -- releases -----------------------------------------------------------------------------------------


@dataclass
class ReleaseFigures:
    pools: int
    records: int
    record_kb: int
    pre_update_pools: int
    deploy_online: float = 0.0
    deploy_reported: float = 0.0
    restart_online: float = 0.0
    restart_reported: float = 0.0
    pre_update_online: float = 0.0
    pre_update_reported: float = 0.0
    reports: int = 0
    listings: Listings = field(default_factory=Listings)
    # phase -> (operator CPU seconds, CPU seconds the whole machine was busy) during it
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    failed: str = ""
    process: ProcessFigures = field(default_factory=ProcessFigures)


def release_record(index: int, key: PoolKey, size: int) -> dict[str, Any]:
    """A Secret shaped like helm's release record (helm 4 labels plus the operator's ``--labels``)."""
    release = f"bench-{index:04d}"
    payload = random.Random(index).randbytes(size)  # incompressible, like helm's gzip'd release
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v1",
            "labels": {
                "owner": "helm",
                "name": release,
                "status": "deployed",
                "version": "1",
                "octo-mesh.meshmakers.io/tenant": key.tenant_id,
                "octo-mesh.meshmakers.io/pool-rt-id": key.pool_rt_id,
                "octo-mesh.meshmakers.io/workload-rt-id": f"e0e0{index:020x}",
                "octo-mesh.meshmakers.io/managed-by": "communication-operator",
            },
        },
        "data": {"release": base64.b64encode(payload).decode()},
    }


async def run_releases(
    pools: int,
    records: int,
    record_kb: int,
    pre_update_pools: int,
    timeout: float,
    operator_env: dict[str, str],
) -> ReleaseFigures:
    figures = ReleaseFigures(pools, records, record_kb, pre_update_pools)
    lag_file = Path(tempfile.mkdtemp(prefix="pool-releases-")) / "loop-lag.json"
    async with local_stack("pool-releases-", NAMESPACE) as stack:
        api = stack.api
        await install_crd(api)
        core: Any = client.CoreV1Api(api)
        main = [burst_rt_id(i) for i in range(pools - pre_update_pools)]
        cycled = [workload_pool_rt_id(i) for i in range(pre_update_pools)]
        everything = [*main, *cycled]
        keys = [*(PoolKey(TENANT, r) for r in main), *(PoolKey(PRE_UPDATE_TENANT, r) for r in cycled)]
        await bounded(
            (
                functools.partial(
                    core.create_namespaced_secret,
                    NAMESPACE,
                    release_record(i, keys[(i * 7) % len(keys)], record_kb * 1024),
                )
                for i in range(records)
            ),
            8,
        )
        async with simulator() as sim:
            admin = sim.admin
            assert sim.base_url is not None
            await bounded(
                (functools.partial(admin.create_pool, TENANT, r, "Cloud", pool_rt_id=r) for r in main), 8
            )
            await bounded(
                (
                    functools.partial(admin.create_pool, PRE_UPDATE_TENANT, r, "Cloud", pool_rt_id=r)
                    for r in cycled
                ),
                8,
            )
            env = {**central_env(stack.helm_env, str(stack.toolchain.helm)), **operator_env}
            async with operator_process(
                Path(stack.env["KUBECONFIG"]), sim.base_url, env, command=probed_command(lag_file)
            ) as operator:
                await asyncio.sleep(2.0)
                figures.process.rss_idle, _ = operator.memory_mb()
                print(
                    f"operator pid {operator.pid} (central) up; {records} release records of {record_kb} KB"
                )
                listed = await listings(api)
                first = time.time()

                def phase(name: str) -> Callable[[], None]:
                    before = cpu_seconds(operator.pid), machine_busy_seconds()

                    def done() -> None:
                        figures.cpu[name] = (
                            cpu_seconds(operator.pid) - before[0],
                            machine_busy_seconds() - before[1],
                        )

                    return done

                try:
                    deployed = phase("deploy")
                    began = time.time()
                    await deploy_pools(admin, everything)
                    online = await registrations_since(admin, began, set(everything), timeout)
                    figures.deploy_online = max(online.values()) - began
                    figures.deploy_reported = (
                        await wait_reported(admin, began, set(everything), timeout) - began
                    )
                    deployed()
                    print(f"{pools} pools deployed: Online {figures.deploy_online:.1f} s")

                    await asyncio.sleep(1.0)
                    restarted = phase("restart")
                    began = time.time()
                    await admin.fault("restart")
                    online = await registrations_since(admin, began, set(everything), timeout)
                    figures.restart_online = max(online.values()) - began
                    figures.restart_reported = (
                        await wait_reported(admin, began, set(everything), timeout) - began
                    )
                    restarted()
                    print(f"controller restart: Online {figures.restart_online:.1f} s")

                    await asyncio.sleep(1.0)
                    updated = phase("pre-update")
                    began = time.time()
                    await admin.pre_update(PRE_UPDATE_TENANT)
                    online = await registrations_since(admin, began, set(cycled), timeout)
                    figures.pre_update_online = max(online.values()) - began
                    figures.pre_update_reported = (
                        await wait_reported(admin, began, set(cycled), timeout) - began
                    )
                    updated()
                    print(f"pre-update of {pre_update_pools}: Online again {figures.pre_update_online:.1f} s")
                except RuntimeError as exc:
                    figures.failed = str(exc)
                    print(f"phase failed: {exc}")
                await asyncio.sleep(WRITE_SETTLE)
                figures.listings = await listings(api) - listed
                figures.reports = len(await calls_since(admin, REPORT, first))
                figures.process.finish(operator, lag_file)
    return figures


def report_releases(figures: ReleaseFigures) -> list[str]:
    n, k = figures.pools, figures.pre_update_pools
    lag = figures.process.lag
    rows = [
        ("measure", "ours", "baseline", "ratio", "target"),
        (f"{n} pools deployed at once -> all Online", f"{figures.deploy_online:.2f} s", "", "", ""),
        ("  -> all reported", f"{figures.deploy_reported:.2f} s", "", "", ""),
        (f"controller restart -> {n} Online", f"{figures.restart_online:.2f} s", "", "", ""),
        ("  -> all reported", f"{figures.restart_reported:.2f} s", "", "", ""),
        (
            f"pre-update of {k} pools -> Online again",
            f"{figures.pre_update_online:.2f} s",
            "(1 s pause included)",
            "",
            "",
        ),
        ("  -> all reported", f"{figures.pre_update_reported:.2f} s", "", "", ""),
        ("ReportDeployedStateAsync calls (all phases)", f"{figures.reports}", "", "", ""),
        ("Secret listings (all phases)", f"{figures.listings.secrets:.0f}", "", "", ""),
        ("CommunicationPool listings (all phases)", f"{figures.listings.pools:.0f}", "", "", ""),
        (
            "operator peak RSS (VmHWM)",
            f"{figures.process.hwm:.1f} MB",
            f"{figures.process.rss_idle:.1f} MB idle",
            f"{figures.process.hwm / figures.process.rss_idle:.2f}",
            f"< {TARGET_RSS_MB:g} MB",
        ),
        ("worst event-loop lag (wall clock)", f"{lag.max_lag:.3f} s", f"{lag.samples} samples", "", ""),
        (
            "worst event-loop lag (its own CPU)",
            f"{lag.max_own_lag:.3f} s",
            "",
            "",
            f"< {TARGET_LOOP_S:g} s",
        ),
    ]
    print_rows(rows)
    print(f"loop lag over 0.1/0.25/0.5/1 s: {lag.over}")
    for name, (operator, machine) in figures.cpu.items():
        print(f"CPU during {name}: operator {operator:.1f} s, whole machine busy {machine:.1f} s")
    print(f"operator log: {figures.process.log}")
    missed = process_targets(figures.process)
    if figures.failed:
        missed.append(figures.failed)
    return missed


def process_targets(process: ProcessFigures) -> list[str]:
    missed = []
    if process.hwm >= TARGET_RSS_MB:
        missed.append(f"peak RSS {process.hwm:.1f} MB (target < {TARGET_RSS_MB:g} MB)")
    # The wall-clock lag also counts time the process got no CPU on a shared machine (see loop_probe).
    if process.lag.max_own_lag >= TARGET_LOOP_S:
        missed.append(f"event loop stalled {process.lag.max_own_lag:.2f} s (target < {TARGET_LOOP_S:g} s)")
    return missed


def print_rows(rows: list[tuple[str, str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
