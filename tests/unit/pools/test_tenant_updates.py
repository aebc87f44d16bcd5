"""The PreUpdateTenantAsync cycle on its own, with plain coroutines for unregister and register."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from communication_operator.pools import PoolKey, PoolRef, PoolRegistry
from communication_operator.pools.tenant_updates import TenantUpdates

A = PoolKey("acme", "65f0c0ffee0000000000aaaa")
B = PoolKey("acme", "65f0c0ffee0000000000bbbb")
C = PoolKey("other", "65f0c0ffee0000000000cccc")


class Calls:
    def __init__(self, updates: TenantUpdates | None = None) -> None:
        self.log: list[tuple[str, tuple[PoolKey, ...]]] = []
        self.updates = updates
        self.held_while_unregistering: list[bool] = []

    async def unregister(self, key: PoolKey) -> None:
        assert self.updates is not None
        self.held_while_unregistering.append(self.updates.holds(key))
        self.log.append(("unregister", (key,)))

    async def register(self, keys: Sequence[PoolKey]) -> None:
        self.log.append(("register", tuple(keys)))


def setup(delay: float = 0.05) -> tuple[TenantUpdates, Calls]:
    registry = PoolRegistry()
    for name, key in (("a", A), ("b", B), ("c", C)):
        registry.claim(PoolRef("pools", name), key, 1)
    calls = Calls()
    updates = TenantUpdates(registry, delay=delay, unregister=calls.unregister, register=calls.register)
    calls.updates = updates
    return updates, calls


async def test_a_cycle_unregisters_holds_waits_and_registers_that_tenants_pools() -> None:
    updates, calls = setup()
    updates.start("acme")
    await asyncio.sleep(0.01)
    assert calls.log == [("unregister", (A,)), ("unregister", (B,))]
    assert calls.held_while_unregistering == [True, True]
    assert updates.holds(A)
    assert updates.holds(B)
    assert not updates.holds(C)
    await updates.idle()
    assert calls.log[-1] == ("register", (A, B))
    assert not updates.holds(A)
    assert not updates.holds(B)


async def test_a_newer_update_restarts_the_cycle_and_keeps_its_pools_held() -> None:
    updates, calls = setup(delay=0.2)
    updates.start("acme")
    await asyncio.sleep(0.01)
    updates.start("acme")  # cancels the first cycle; its end must not release the second's holds
    await asyncio.sleep(0.01)
    assert updates.holds(A)
    assert updates.holds(B)
    await updates.idle()
    assert [name for name, _ in calls.log].count("register") == 1
    assert not updates.holds(A)


async def test_a_tenant_without_pools_does_nothing() -> None:
    updates, calls = setup()
    updates.start("nobody")
    await updates.idle()
    assert calls.log == []


async def test_stop_cancels_running_cycles_and_releases_their_pools() -> None:
    updates, calls = setup(delay=10)
    updates.start("acme")
    await asyncio.sleep(0.01)
    await updates.stop()
    assert not updates.holds(A)
    assert ("register", (A, B)) not in calls.log
