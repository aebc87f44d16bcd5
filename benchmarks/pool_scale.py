"""CommunicationPools at scale: a real operator process, the local API server, the controller simulator.

Measured, each against a baseline from the same run:

1. create → Online: for every CR, from just before its create request to the simulator accepting its
   ``RegisterPoolAsync`` (the call's timestamp in ``/admin/calls``). Baseline: the API server's own
   create → watch-event latency for the same CRs (a watch in this process; the floor any controller
   that reacts to watch events can reach). Target: p95 under 500 ms. CRs are created at ``--rate``
   per second (default 50, 16 requests in flight at most); ``--rate 0`` is a burst as fast as the API
   server takes them, which on 2 cores needs more CPU than the machine has (see docs/benchmarks.md).
2. Full resync: ``fault restart`` on the simulator (every connection dropped, modes forgotten, as when
   the controller pod restarts), then the time until every pool is registered again on the new
   connection. With all N pools and, as the baseline, with the first few (per-pool cost). Also shown:
   a bare hub client registering the same N pools (32 in flight) — the protocol's floor. Target: under 5 s.
3. Operator RSS (``VmRSS`` of the process, peak ``VmHWM``) at N pools vs idle with 0 pools.
   Target: under 150 MB.

The simulator runs without a state file: with one it rewrites its whole state after every hub call
(about 7 ms at 1,000 pools), which would time the simulator, not the operator. ``fault restart`` keeps
pools and workloads in memory, like the controller keeps them in its database.

The CPU each process spent during the bulk create is printed too, including "other processes": figures
taken while something else loads the machine are not comparable.

Run: ``.venv/bin/python -m benchmarks.pool_scale [--pools 1000] [--rate 50]``. Exit 0 when every target
is met, 1 otherwise (the missed targets are named). ``--scenario burst`` and ``--scenario releases`` run
the central-mode scenarios of :mod:`benchmarks.pool_scale_central`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import logging
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio import client, config, watch

from communication_operator.contracts import ServerMethod
from communication_operator.hub import HubConnection, HubOptions
from communication_operator.pools import GROUP, PLURAL, VERSION
from communication_operator.resources import communication_pool_crd
from octo_devtools.controller_sim import AdminClient, SimulatorOptions, SimulatorProcess
from octo_devtools.devcluster import lifecycle
from octo_devtools.devcluster.controlplane import ClusterState

log = logging.getLogger(__name__)

TENANT = "bench"
NAMESPACE = "pool-scale"
TARGET_RESYNC_S = 5.0
TARGET_CREATE_P95_S = 0.5
TARGET_RSS_MB = 150.0
# What runs the operator (a profiler may wrap it); the environment carries the configuration.
OPERATOR_COMMAND = [sys.executable, "-m", "communication_operator.cli", "run"]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pool_rt_id(index: int) -> str:
    return f"b0b0{index:020x}"


def cr_name(index: int) -> str:
    return f"pool-{index:05d}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the local cluster -------------------------------------------------------------------------------


@contextlib.contextmanager
def local_cluster() -> Iterator[ClusterState]:
    """The devcluster code path (like the ``kube_cluster`` fixture) in a private state dir."""
    with tempfile.TemporaryDirectory(prefix="pool-scale-cluster.") as tmp:
        state_dir = Path(tmp) / "state"
        result = lifecycle.up(state_dir, lambda line: log.info("%s", line), die_with_parent=True)
        try:
            yield result.state
        finally:
            lifecycle.down(state_dir, lambda line: log.info("%s", line))


async def install_crd(api: client.ApiClient) -> None:
    manifest = yaml.safe_load(communication_pool_crd())
    extensions: Any = client.ApiextensionsV1Api(api)
    with contextlib.suppress(client.ApiException):
        await extensions.create_custom_resource_definition(manifest)
    name = manifest["metadata"]["name"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = await extensions.read_custom_resource_definition(name)
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"CRD {name} not Established after 30 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (/proc/stat: everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each named process spent between :meth:`start` and :meth:`stop`, and what the rest
    of the machine spent meanwhile (other work on a shared machine skews every figure)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {**pids, "benchmark": os.getpid()}
        self._before: dict[str, float] = {}
        self._machine_before = 0.0
        self.spent: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine_before = machine_busy_seconds()

    def stop(self) -> None:
        self.spent = {name: cpu_seconds(pid) - self._before[name] for name, pid in self.pids.items()}
        machine = machine_busy_seconds() - self._machine_before
        self.spent["other processes"] = max(0.0, machine - sum(self.spent.values()))

    def describe(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.spent.items())


# -- the operator process ----------------------------------------------------------------------------


@dataclass
class OperatorProcess:
    process: asyncio.subprocess.Process
    health_port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB, from /proc."""
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024  # kB
        return fields["VmRSS"], fields["VmHWM"]

    async def healthz(self, http: aiohttp.ClientSession) -> dict[str, Any] | None:
        try:
            async with http.get(f"http://127.0.0.1:{self.health_port}/healthz") as response:
                return dict(await response.json()) if response.status == 200 else None
        except aiohttp.ClientError:
            return None


def _terminate_with_parent() -> None:
    # PR_SET_PDEATHSIG: a killed benchmark must not leave an operator behind (it would keep retrying).
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@contextlib.asynccontextmanager
async def operator_process(
    kubeconfig: Path,
    controller_uri: str,
    extra_env: dict[str, str],
    command: list[str] | None = None,
) -> AsyncIterator[OperatorProcess]:
    """``communication-operator run`` (or ``command``) in edge mode for NAMESPACE unless ``extra_env``
    says otherwise; SIGTERM on exit. Its log is kept."""
    health_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPERATOR__")}
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "OPERATOR__COMMUNICATIONCONTROLLERURI": controller_uri,
            "OPERATOR__AUTOMANAGEPOOLS": "false",
            "OPERATOR__WATCHNAMESPACE": NAMESPACE,
            "OPERATOR__POOLNAMESPACE": NAMESPACE,
            "OPERATOR__HEALTH__PORT": str(health_port),
            "OPERATOR__METRICS__PORT": "0",
            **extra_env,
        }
    )
    log_fd, log_name = tempfile.mkstemp(prefix="pool-scale-operator-", suffix=".log")
    log_path = Path(log_name)
    try:
        process = await asyncio.create_subprocess_exec(
            *(command or OPERATOR_COMMAND),
            env=env,
            preexec_fn=_terminate_with_parent,
            stdout=log_fd,
            stderr=asyncio.subprocess.STDOUT,
        )
    finally:
        os.close(log_fd)
    operator = OperatorProcess(process, health_port, log_path)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            deadline = time.monotonic() + 30
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"the operator exited with {process.returncode}; log: {log_path}")
                health = await operator.healthz(http)
                if health and health.get("hub", {}).get("connected"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the operator did not connect within 30 s; log: {log_path}")
                await asyncio.sleep(0.1)
        yield operator
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


# -- measurements ------------------------------------------------------------------------------------


class AddedWatch:
    """When each CommunicationPool's ADDED event reached this process (the API server's floor)."""

    def __init__(self, api: client.ApiClient, namespace: str = NAMESPACE) -> None:
        self._custom: Any = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.added: dict[str, float] = {}
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._watch = watch.Watch()

    async def start(self) -> None:
        listing = await self._custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        self._task = asyncio.create_task(self._run(listing["metadata"]["resourceVersion"]))

    async def _run(self, resource_version: str) -> None:
        # The API server closes a watch whose reader falls behind; resume from the last version seen.
        while True:
            stream = self._watch.stream(
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                resource_version=resource_version,
                timeout_seconds=600,
            )
            async for event in stream:
                if event["type"] in ("ADDED", "MODIFIED"):
                    # First sight of each object (ADDED unless the API server closed the watch on us).
                    self.added.setdefault(event["object"]["metadata"]["name"], time.time())
            self.restarts += 1
            resource_version = self._watch.resource_version or resource_version
            self._watch = watch.Watch()

    async def wait_for(self, names: Iterable[str], timeout: float) -> None:
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while not wanted <= self.added.keys():
            if self._task is not None and self._task.done():
                self._task.result()
                raise RuntimeError("the watch ended early")
            if time.monotonic() > deadline:
                missing = sorted(wanted - self.added.keys())
                raise RuntimeError(f"the watch never saw {len(missing)} CRs, e.g. {missing[:3]}")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self._watch.stop()
        if self._task is not None and self._task.done():
            self._task.result()  # the watch failed: say why
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def create_crs(
    api: client.ApiClient, indices: Iterable[int], concurrency: int, rate: float
) -> dict[str, float]:
    """Create the CRs, at most ``concurrency`` requests in flight and (if ``rate`` > 0) starting no
    more than ``rate`` per second; returns name → wall time just before its request."""
    custom: Any = client.CustomObjectsApi(api)
    slots = asyncio.Semaphore(concurrency)
    started: dict[str, float] = {}
    begin = time.monotonic()

    async def create(position: int, index: int) -> None:
        if rate > 0:
            await asyncio.sleep(max(0.0, begin + position / rate - time.monotonic()))
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CommunicationPool",
            "metadata": {"name": cr_name(index)},
            "spec": {"tenantId": TENANT, "poolRtId": pool_rt_id(index)},
        }
        async with slots:
            started[cr_name(index)] = time.time()
            await custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

    await asyncio.gather(*(create(position, i) for position, i in enumerate(indices)))
    return started


async def registrations_since(
    admin: AdminClient, since: float, wanted: set[str], timeout: float, interval: float = 0.25
) -> dict[str, float]:
    """poolRtId → time of its first successful RegisterPoolAsync at or after ``since``, once all of
    ``wanted`` have one. The times come from the simulator, so the polling interval does not count."""
    deadline = time.monotonic() + timeout
    while True:
        first: dict[str, float] = {}
        for call in await admin.calls(ServerMethod.REGISTER_POOL):
            if call["error"] is None and call["time"] >= since:
                first.setdefault(call["arguments"][1], call["time"])
        if wanted <= first.keys():
            return {rt_id: first[rt_id] for rt_id in wanted}
        if time.monotonic() > deadline:
            missing = len(wanted - first.keys())
            raise RuntimeError(f"{missing} of {len(wanted)} pools not registered within {timeout:g} s")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class Resync:
    total: float  # fault restart -> the last pool registered again
    reconnect: float  # fault restart -> RegisterOperatorAsync on the new connection (the hub's backoff)

    @property
    def reregister(self) -> float:
        return self.total - self.reconnect


async def resync(admin: AdminClient, rt_ids: set[str], timeout: float) -> Resync:
    """``fault restart``, then wait until every one of ``rt_ids`` is registered on the new connection."""
    restarted = time.time()
    await admin.fault("restart")
    registered = await registrations_since(admin, restarted, rt_ids, timeout)
    operator_registered = min(
        c["time"] for c in await admin.calls(ServerMethod.REGISTER_OPERATOR) if c["time"] >= restarted
    )
    state = await admin.state()
    claimed = {p["poolRtId"] for c in state["connections"] for p in c["pools"]}
    online = {p["poolRtId"] for p in state["pools"] if p["communicationState"] == "Online"}
    if not rt_ids <= claimed & online:
        raise RuntimeError(f"{len(rt_ids - (claimed & online))} pools not Online and claimed after resync")
    return Resync(max(registered.values()) - restarted, operator_registered - restarted)


async def bare_hub_registration(base_url: str, rt_ids: list[str], in_flight: int = 32) -> float:
    """The protocol's floor: one hub client registering the pools, ``in_flight`` at a time."""
    hub = HubConnection(HubOptions(url=base_url))
    await hub.start()
    try:
        await hub.wait_connected(10)
        await hub.invoke(ServerMethod.REGISTER_OPERATOR, False)
        slots = asyncio.Semaphore(in_flight)

        async def register(rt_id: str) -> None:
            async with slots:
                await hub.invoke(ServerMethod.REGISTER_POOL, TENANT, rt_id)

        started = time.perf_counter()
        await asyncio.gather(*(register(r) for r in rt_ids))
        return time.perf_counter() - started
    finally:
        await hub.stop()


async def create_and_wait(
    api: client.ApiClient,
    admin: AdminClient,
    indices: range,
    concurrency: int,
    rate: float,
    figures: Figures,
) -> dict[str, float]:
    """Create CRs for ``indices``, wait until all are Online; record create -> Online per CR."""
    started = await create_crs(api, indices, concurrency, rate)
    online = await registrations_since(admin, min(started.values()), {pool_rt_id(i) for i in indices}, 120)
    for i in indices:
        figures.create_online.append(online[pool_rt_id(i)] - started[cr_name(i)])
    return started


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with slots:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


# -- the run -----------------------------------------------------------------------------------------


@dataclass
class Figures:
    pools: int
    small: int
    create_rate: float = 0.0  # CRs per second, bulk create until all Online
    create_cpu: str = ""  # CPU seconds per process during the bulk create
    idle_cpu: float = 0.0  # operator CPU seconds per second with N pools and nothing happening
    create_online: list[float] = field(default_factory=list)  # seconds, per CR
    create_watch: list[float] = field(default_factory=list)  # seconds, per CR (baseline)
    resync_small: list[Resync] = field(default_factory=list)
    resync_full: list[Resync] = field(default_factory=list)
    bare_hub: float = 0.0
    rss_idle: float = 0.0
    rss_full: float = 0.0
    hwm: float = 0.0
    watch_restarts: int = 0  # times the API server closed the baseline's watch (slow reader)
    operator_log: str = ""


async def run(
    pools: int, small: int, concurrency: int, rate: float, rounds: int, operator_env: dict[str, str]
) -> Figures:
    figures = Figures(pools=pools, small=small)
    rt_ids = [pool_rt_id(i) for i in range(pools)]
    with local_cluster() as cluster:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = max(concurrency, 4)
        async with client.ApiClient(configuration) as api:
            await install_crd(api)
            core: Any = client.CoreV1Api(api)
            await core.create_namespace({"metadata": {"name": NAMESPACE}})

            sim = SimulatorProcess(SimulatorOptions())
            # Why no state file: see the module docstring.
            sim.options = dataclasses.replace(sim.options, state_file=None)
            async with sim:
                admin = sim.admin
                await bounded(
                    (
                        functools.partial(
                            admin.create_pool, TENANT, f"site-{i}", "Edge", pool_rt_id=pool_rt_id(i)
                        )
                        for i in range(pools)
                    ),
                    8,
                )
                assert sim.base_url is not None
                assert sim.pid is not None
                sim_pid = sim.pid
                async with operator_process(cluster.kubeconfig, sim.base_url, operator_env) as operator:
                    figures.operator_log = str(operator.log_path)
                    await asyncio.sleep(2.0)  # settle: imports done, first watch listed
                    figures.rss_idle, _ = operator.memory_mb()
                    print(f"operator pid {operator.pid} connected; idle RSS {figures.rss_idle:.1f} MB")

                    added = AddedWatch(api)
                    await added.start()
                    try:
                        # The baseline's few pools first (and their resyncs), then the rest.
                        started = await create_and_wait(api, admin, range(small), concurrency, rate, figures)
                        for _ in range(rounds):
                            figures.resync_small.append(await resync(admin, set(rt_ids[:small]), 60))
                        cpu = CpuMeter({"operator": operator.pid, **cluster.pids, "simulator": sim_pid})
                        cpu.start()
                        began = time.perf_counter()
                        started |= await create_and_wait(
                            api, admin, range(small, pools), concurrency, rate, figures
                        )
                        figures.create_rate = (pools - small) / (time.perf_counter() - began)
                        await asyncio.sleep(1.0)  # the status and Event writes behind the registrations
                        cpu.stop()
                        figures.create_cpu = cpu.describe()
                        await added.wait_for(started, 30)
                        for name, began_at in started.items():
                            figures.create_watch.append(added.added[name] - began_at)
                    finally:
                        figures.watch_restarts = added.restarts
                        await added.stop()
                    print(f"{pools} CRs created and Online; measuring {rounds} full resyncs")
                    idle_from = cpu_seconds(operator.pid)
                    await asyncio.sleep(3.0)
                    figures.idle_cpu = (cpu_seconds(operator.pid) - idle_from) / 3.0
                    figures.rss_full, _ = operator.memory_mb()
                    for _ in range(rounds):
                        figures.resync_full.append(await resync(admin, set(rt_ids), 120))
                        await asyncio.sleep(1.0)
                    figures.rss_full = max(figures.rss_full, operator.memory_mb()[0])
                    _, figures.hwm = operator.memory_mb()
                figures.bare_hub = await bare_hub_registration(sim.base_url, rt_ids)
    return figures


def report(figures: Figures) -> list[str]:
    """Print the table; returns the missed targets."""
    ms = 1000.0
    p50, p95 = percentile(figures.create_online, 0.5), percentile(figures.create_online, 0.95)
    w50, w95 = percentile(figures.create_watch, 0.5), percentile(figures.create_watch, 0.95)
    worst = max(r.total for r in figures.resync_full)
    full = statistics.median(r.total for r in figures.resync_full)
    small = statistics.median(r.total for r in figures.resync_small)
    rereg_full = statistics.median(r.reregister for r in figures.resync_full)
    rereg_small = statistics.median(r.reregister for r in figures.resync_small)
    n, k = figures.pools, figures.small
    rows = [
        ("measure", "ours", "baseline", "ratio", "target"),
        (
            f"create -> Online p50 ({n} CRs)",
            f"{p50 * ms:.0f} ms",
            f"{w50 * ms:.0f} ms (create -> watch event)",
            f"{p50 / w50:.1f}",
            "",
        ),
        (
            "create -> Online p95",
            f"{p95 * ms:.0f} ms",
            f"{w95 * ms:.0f} ms",
            f"{p95 / w95:.1f}",
            f"< {TARGET_CREATE_P95_S * ms:.0f} ms",
        ),
        ("create -> Online max", f"{max(figures.create_online) * ms:.0f} ms", "", "", ""),
        (f"{n - k} CRs created -> all Online", f"{figures.create_rate:.0f} CRs/s", "", "", ""),
        (
            f"restart -> {n} Online, median of {len(figures.resync_full)}",
            f"{full:.2f} s",
            f"{small:.2f} s ({k} pools)",
            f"{full / small:.1f}",
            "",
        ),
        (f"restart -> {n} Online, worst", f"{worst:.2f} s", "", "", f"< {TARGET_RESYNC_S:.0f} s"),
        (
            f"re-registration of {n} (median)",
            f"{rereg_full:.2f} s",
            f"{figures.bare_hub:.2f} s (bare hub client)",
            f"{rereg_full / figures.bare_hub:.1f}",
            "",
        ),
        (
            "re-registration per pool",
            f"{rereg_full / n * ms:.2f} ms",
            f"{rereg_small / k * ms:.2f} ms ({k} pools)",
            f"{(rereg_full / n) / (rereg_small / k):.2f}",
            "",
        ),
        (
            f"operator RSS at {n} pools",
            f"{figures.rss_full:.1f} MB",
            f"{figures.rss_idle:.1f} MB (0 pools)",
            f"{figures.rss_full / figures.rss_idle:.2f}",
            f"< {TARGET_RSS_MB:.0f} MB",
        ),
        ("operator peak RSS (VmHWM)", f"{figures.hwm:.1f} MB", "", "", ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for size, rounds in ((n, figures.resync_full), (k, figures.resync_small)):
        print(
            f"resyncs of {size} pools (reconnect + re-registration): "
            + ", ".join(f"{r.reconnect:.2f} + {r.reregister:.2f} s" for r in rounds)
        )
    print(f"CPU during the bulk create: {figures.create_cpu}")
    print(f"operator CPU at rest with {n} pools: {figures.idle_cpu * 100:.1f} % of a core")
    print(f"operator log: {figures.operator_log}; baseline watch resumed {figures.watch_restarts} time(s)")
    missed = []
    if worst >= TARGET_RESYNC_S:
        missed.append(f"full resync {worst:.2f} s (target < {TARGET_RESYNC_S:g} s)")
    if p95 >= TARGET_CREATE_P95_S:
        missed.append(f"create -> Online p95 {p95 * ms:.0f} ms (target < {TARGET_CREATE_P95_S * ms:.0f} ms)")
    if figures.rss_full >= TARGET_RSS_MB:
        missed.append(f"RSS {figures.rss_full:.1f} MB (target < {TARGET_RSS_MB:g} MB)")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario",
        choices=["edge", "burst", "releases"],
        default="edge",
        help="edge: the figures above; burst and releases: central mode (benchmarks/pool_scale_central.py)",
    )
    parser.add_argument(
        "--pools", type=int, default=None, help="pools (default 1000; 300 for --scenario burst)"
    )
    parser.add_argument("--workloads", type=int, default=30, help="burst: workloads deploying meanwhile")
    parser.add_argument("--release-records", type=int, default=200, help="releases: helm release records")
    parser.add_argument("--record-kb", type=int, default=50, help="releases: payload of each record, KB")
    parser.add_argument("--pre-update-pools", type=int, default=100, help="releases: pools of the tenant")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="releases: seconds per phase")
    parser.add_argument("--small", type=int, default=10, help="pools of the baseline resync")
    parser.add_argument("--concurrency", type=int, default=16, help="CR create requests in flight")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="CR creates started per second (0: as fast as possible)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="resyncs measured at each size")
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the operator, e.g. OPERATOR__LOG__LEVEL=DEBUG",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    operator_env = dict(item.split("=", 1) for item in args.operator_env)
    if args.scenario == "edge":
        pools = args.pools or 1000
        if not 0 < args.small < pools:
            parser.error("need 0 < --small < --pools")
        figures = asyncio.run(run(pools, args.small, args.concurrency, args.rate, args.rounds, operator_env))
        missed = report(figures)
    else:
        from benchmarks import pool_scale_central as central

        if args.scenario == "burst":
            burst = asyncio.run(central.run_burst(args.pools or 300, args.workloads, operator_env))
            missed = central.report_burst(burst)
        else:
            releases = asyncio.run(
                central.run_releases(
                    args.pools or 1000,
                    args.release_records,
                    args.record_kb,
                    args.pre_update_pools,
                    args.phase_timeout,
                    operator_env,
                )
            )
            missed = central.report_releases(releases)
    if missed:
        print("TARGETS MISSED: " + "; ".join(missed))
        return 1
    print("targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
