"""Per-pool locks and a bounded gather, for the registration service.

All registration work on one pool runs under that pool's lock, so outcomes are recorded in the order
the calls happened. A lock lives while its pool is owned or the lock is held; registering thousands of
pools at once runs at most ``limit`` calls side by side (:func:`bounded_gather`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from communication_operator.pools.model import PoolKey
from communication_operator.pools.registry import PoolRegistry

T = TypeVar("T")


class PoolLocks(dict[PoolKey, asyncio.Lock]):
    """The live locks by pool (a dict, so what is left behind can be seen)."""

    def __init__(self, registry: PoolRegistry) -> None:
        super().__init__()
        self._registry = registry

    def of(self, key: PoolKey) -> asyncio.Lock:
        lock = self.get(key)
        if lock is None:
            lock = self[key] = asyncio.Lock()
        return lock

    def drop(self, key: PoolKey) -> None:
        """Forget ``key``'s lock once its pool is no longer owned (call it outside the lock)."""
        lock = self.get(key)
        if key not in self._registry and lock is not None and not lock.locked():
            del self[key]


async def bounded_gather(calls: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Await ``calls`` side by side, at most ``limit`` at a time; results in the order of ``calls``."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with slots:
            return await call

    # gather copies the context into each task, so the hub still sees them as part of its connect hook.
    return list(await asyncio.gather(*(one(c) for c in calls)))
