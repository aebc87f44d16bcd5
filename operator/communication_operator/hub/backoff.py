"""Reconnect delays: exponential with jitter, capped, and reset after a healthy connection."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 10.0
    jitter: float = 0.2  # fraction of the delay added or removed at random, so operators don't stampede

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before reconnect attempt ``attempt`` (0 = first retry after a failure)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt))
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))
