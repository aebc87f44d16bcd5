"""Benchmark-only: run ``communication-operator`` with a probe that measures its event loop's lag.

``python -m benchmarks.loop_probe <out.json> <cli args…>`` runs the operator's CLI in this process, with
one extra task on its event loop: it sleeps ``INTERVAL`` seconds over and over and records by how much
each wake-up came late. A wake-up late by X seconds means the loop ran something else without yielding
for about X seconds (parsing a large response, a synchronous call): every timer, every watch event and
every hub frame waited as long. The figures are rewritten to ``out.json`` twice a second, so a killed
operator still leaves them behind.

On a shared machine a wake-up is also late when the process simply got no CPU. ``own`` lag counts only
what the loop's thread itself spent on the CPU meanwhile (``min(lateness, thread CPU time during the
sleep)``): a stall of the operator's own making shows in both, starvation by other processes only in
the wall-clock figure.

Nothing of this ships: the product has no hook for it; the probe installs itself through an event loop
policy before the CLI creates its loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

INTERVAL = 0.05
WRITE_EVERY = 0.5
# Lateness thresholds counted separately (seconds).
THRESHOLDS = (0.1, 0.25, 0.5, 1.0)


@dataclass
class LoopLag:
    samples: int = 0
    max_lag: float = 0.0
    max_lag_at: float = 0.0  # wall time of the worst wake-up
    max_own_lag: float = 0.0  # the worst lateness the loop's thread spent on the CPU itself
    over: dict[str, int] = field(default_factory=lambda: {f"{t:g}": 0 for t in THRESHOLDS})
    lags: list[float] = field(default_factory=list)  # every lateness over the smallest threshold

    def add(self, lag: float, cpu: float) -> None:
        self.samples += 1
        self.max_own_lag = max(self.max_own_lag, min(lag, cpu))
        if lag > self.max_lag:
            self.max_lag, self.max_lag_at = lag, time.time()
        for threshold in THRESHOLDS:
            if lag > threshold:
                self.over[f"{threshold:g}"] += 1
        if lag > THRESHOLDS[0]:
            self.lags.append(round(lag, 4))

    @classmethod
    def read(cls, path: Path) -> LoopLag:
        data = json.loads(path.read_text())
        return cls(**data)


def _write(path: Path, lag: LoopLag) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(lag)))
    os.replace(temporary, path)


async def probe(path: Path) -> None:
    loop = asyncio.get_running_loop()
    lag = LoopLag()
    written = loop.time()
    while True:
        before, cpu_before = loop.time(), time.thread_time()
        await asyncio.sleep(INTERVAL)
        now = loop.time()
        lag.add(max(0.0, now - before - INTERVAL), time.thread_time() - cpu_before)
        if now - written >= WRITE_EVERY:
            _write(path, lag)
            written = now


class ProbedPolicy(asyncio.DefaultEventLoopPolicy):
    """Starts :func:`probe` on the first event loop created (the CLI's ``asyncio.run``)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._started = False
        self._tasks: set[asyncio.Task[None]] = set()

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        if not self._started:
            self._started = True

            def start() -> None:
                task = loop.create_task(probe(self._path), name="benchmark-loop-probe")
                self._tasks.add(task)

            loop.call_soon(start)
        return loop


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(sys.argv[1])
    asyncio.set_event_loop_policy(ProbedPolicy(path))
    from communication_operator.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
