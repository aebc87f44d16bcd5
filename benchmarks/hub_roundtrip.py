"""Hub client benchmarks, each compared with a baseline measured in the same run.

1. Invoke round trip (``RegisterOperatorAsync``) of our client vs the official ``@microsoft/signalr``
   client, against the same simulator process. Target: our median within 1.5x of the official one.
2. Time from "controller reachable again" (a killed simulator process restarted and listening after
   one second away) to "operator registered" (our on_connected hook finished), with the production
   backoff. Target: under 2 s. Baseline: a first connect + register against a running controller, so
   the ratio shows what the backoff costs.

Run: ``.venv/bin/python -m benchmarks.hub_roundtrip [--calls 1000] [--restarts 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

from communication_operator.contracts import ServerMethod
from communication_operator.hub import HubConnection, HubOptions
from octo_devtools.controller_sim import SimulatorOptions, SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def ours_roundtrip(url: str, calls: int, warmup: int) -> list[float]:
    hub = HubConnection(HubOptions(url=url))
    await hub.start()
    try:
        await hub.wait_connected(10)
        for _ in range(warmup):
            await hub.invoke(ServerMethod.REGISTER_OPERATOR, True)
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            await hub.invoke(ServerMethod.REGISTER_OPERATOR, True)
            samples.append((time.perf_counter() - start) * 1000)
        return samples
    finally:
        await hub.stop()


async def official_roundtrip(url: str, calls: int, warmup: int) -> list[float]:
    script = ROOT / "benchmarks" / "official_client_roundtrip.js"
    env = {**os.environ, "SIM_URL": url, "BENCH_CALLS": str(calls), "BENCH_WARMUP": str(warmup)}
    process = await asyncio.create_subprocess_exec(
        "node", str(script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"official client benchmark failed: {stderr.decode()}")
    samples: list[float] = json.loads(stdout)["samples_ms"]
    return samples


async def reconnect_times(sim: SimulatorProcess, restarts: int) -> tuple[list[float], list[float]]:
    """(seconds from restart-listening to registered, seconds for a first connect + register)."""
    assert sim.base_url is not None
    registered = asyncio.Event()
    hub = HubConnection(HubOptions(url=sim.base_url))  # the production backoff

    async def register() -> None:
        await hub.invoke(ServerMethod.REGISTER_OPERATOR, True)
        registered.set()

    disconnected = asyncio.Event()
    hub.state_listeners.append(lambda ready: None if ready else disconnected.set())
    hub.on_connected(register)
    first_start = time.perf_counter()
    await hub.start()
    await asyncio.wait_for(registered.wait(), 10)
    baseline = [time.perf_counter() - first_start]
    samples = []
    try:
        for _ in range(restarts):
            disconnected.clear()
            await sim.kill()
            await asyncio.wait_for(disconnected.wait(), 10)
            registered.clear()
            await asyncio.sleep(1.0)  # the controller is away for a second
            await sim.start()
            reachable = time.perf_counter()
            await asyncio.wait_for(registered.wait(), 30)
            samples.append(time.perf_counter() - reachable)
    finally:
        await hub.stop()
    return samples, baseline


def summary(name: str, samples: list[float], unit: str) -> str:
    return (
        f"{name:<34} n={len(samples):<5} median={statistics.median(samples):8.3f} {unit}  "
        f"p99={percentile(samples, 0.99):8.3f} {unit}  max={max(samples):8.3f} {unit}"
    )


async def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=5)
    args = parser.parse_args()

    async with SimulatorProcess(SimulatorOptions()) as sim:
        assert sim.base_url is not None
        official = await official_roundtrip(sim.base_url, args.calls, args.warmup)
        ours = await ours_roundtrip(sim.base_url, args.calls, args.warmup)
        official_again = await official_roundtrip(sim.base_url, args.calls, args.warmup)
        baseline = official + official_again
        print(summary("official @microsoft/signalr invoke", baseline, "ms"))
        print(summary("communication_operator.hub invoke", ours, "ms"))
        ratio = statistics.median(ours) / statistics.median(baseline)
        print(f"round-trip ratio (ours / official, median): {ratio:.2f}  (target <= 1.5)")

        restart, first_connect = await reconnect_times(sim, args.restarts)
        print(summary("first connect + register", first_connect, "s"))
        print(summary("reachable again -> registered", restart, "s"))
        ratio_restart = statistics.median(restart) / first_connect[0]
        print(f"re-registration ratio (median after restart / first connect): {ratio_restart:.1f}")
        ok = ratio <= 1.5 and max(restart) < 2.0
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
