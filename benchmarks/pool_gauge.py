"""The ``pools`` gauge: what counting it at scrape time costs, and what the registrations no longer pay.

The gauge is computed from the pool registry when ``/metrics`` is scraped (issue 9) instead of being
kept in step on every registration. Measured in one process, no network:

1. scrape: ``OperatorMetrics.exposition()`` (everything ``/metrics`` serves) with N owned pools, mixed
   phases. Baseline: the same exposition with no pool service attached.
2. resync: the connect hook (``on_connected``) re-registering N owned pools against an in-process
   hub that accepts at once, so the operator's own bookkeeping is what is timed. Wall and process CPU
   time: on a shared machine the CPU time is the steadier figure.

Run against this tree: ``.venv/bin/python -m benchmarks.pool_gauge [--pools 1000 10000]``. To compare
with another tree, put its ``operator`` directory first on ``PYTHONPATH``; only APIs both shapes have
are used.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from typing import Any

from communication_operator.contracts import ServerMethod
from communication_operator.hub import HubError
from communication_operator.kube.objects import EventType, ObjectRef
from communication_operator.metrics import OperatorMetrics
from communication_operator.pools import (
    CommunicationPoolSpec,
    PoolRef,
    PoolRegistrationService,
    PoolRegistry,
    PoolStatusWriter,
)

SCRAPES = 50


class AcceptingHub:
    """Accepts every call at once (refuses every 10th pool, so two phases are counted)."""

    connected = True

    async def invoke(self, method: ServerMethod, *args: Any, timeout: float | None = None) -> Any:
        if method == ServerMethod.REGISTER_POOL and int(args[1], 16) % 10 == 0:
            raise HubError(str(method), "HubException: refused for the benchmark")
        return [] if method == ServerMethod.REGISTER_OPERATOR else None

    async def report(self, method: ServerMethod, *args: Any) -> None:
        return None


class NoKube:
    async def patch_custom_status(
        self, group: str, version: str, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> bool:
        return True

    async def post_event(self, ref: ObjectRef, event_type: EventType, reason: str, message: str) -> None:
        return None


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


def _time_scrapes(metrics: OperatorMetrics) -> list[float]:
    samples = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        metrics.exposition()
        samples.append(time.perf_counter() - started)
    return samples


async def measure(pools: int) -> None:
    baseline = _time_scrapes(OperatorMetrics())
    metrics = OperatorMetrics()
    service = PoolRegistrationService(
        AcceptingHub(),
        PoolRegistry(),
        PoolStatusWriter(NoKube()),
        central=False,
        retry_seconds=0,
        pending_grace=0,
        metrics=metrics,
    )
    for i in range(pools):
        spec = CommunicationPoolSpec.from_body({"tenantId": "acme", "poolRtId": f"{i:024x}"})
        await service.ensure_registered(PoolRef("pools", f"p{i}", f"uid-{i}"), spec)
    resyncs, resync_cpu = [], []
    for _ in range(5):
        started, cpu = time.perf_counter(), time.process_time()
        await service.on_connected()
        resyncs.append(time.perf_counter() - started)
        resync_cpu.append(time.process_time() - cpu)
    scrapes = _time_scrapes(metrics)
    text = metrics.exposition().decode()
    gauge = [line for line in text.splitlines() if line.startswith("communication_operator_pools{")]
    print(f"{pools} pools: {', '.join(gauge)}")
    print(f"  scrape   {_ms(scrapes)} (no pool service: {_ms(baseline)})")
    print(f"  resync   {_ms(resyncs)} per on_connected of all {pools} pools (CPU: {_ms(resync_cpu)})")
    await service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the refused pools would log one line each
    for pools in args.pools:
        asyncio.run(measure(pools))


if __name__ == "__main__":
    main()
