"""``PreUpdateTenantAsync``: unregister a tenant's pools, wait, register them again (octo-spec §2.2, §6).

The controller broadcasts the push before it updates a tenant. Pushes are handled one at a time, so the
cycle runs in the background; a newer push for the same tenant cancels the running cycle and starts
over. While a cycle runs, its pools are *held*: the retry loop, reconnects and kopf handlers leave them
unregistered until the wait is over (:meth:`TenantUpdates.holds`, asked by the registration service).

Who does the unregistering and registering is passed in (the registration service's own paths), so
this module knows nothing of the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from communication_operator.logs import log_context
from communication_operator.pools.model import PoolKey
from communication_operator.pools.registry import PoolRegistry

log = logging.getLogger(__name__)

Unregister = Callable[[PoolKey], Awaitable[object]]  # logs its own failures
RegisterAndReport = Callable[[Sequence[PoolKey]], Awaitable[None]]


class TenantUpdates:
    def __init__(
        self,
        registry: PoolRegistry,
        *,
        delay: float,
        unregister: Unregister,
        register: RegisterAndReport,
    ) -> None:
        self._registry = registry
        self._delay = delay
        self._unregister = unregister
        self._register = register
        self._cycles: dict[str, asyncio.Task[None]] = {}
        # The pools each running cycle holds, by tenant; each cycle has its own set, so a cancelled
        # cycle's cleanup never releases the pools of the cycle that replaced it.
        self._held: dict[str, set[PoolKey]] = {}

    def start(self, tenant_id: str) -> None:
        """Start the tenant's cycle (restarting one already under way) and return."""
        running = self._cycles.pop(tenant_id, None)
        if running is not None:
            running.cancel()  # a newer update restarts the cycle
        held: set[PoolKey] = set()
        self._held[tenant_id] = held
        task = asyncio.create_task(self._cycle(tenant_id, held), name=f"pre-update-tenant-{tenant_id}")
        self._cycles[tenant_id] = task
        task.add_done_callback(lambda t: self._forget(tenant_id, t, held))

    def holds(self, key: PoolKey) -> bool:
        """Whether a running cycle keeps ``key`` unregistered."""
        held = self._held.get(key.tenant_id)
        return held is not None and key in held

    async def idle(self) -> None:
        """Wait until running cycles are done (tests, shutdown)."""
        while self._cycles:
            await asyncio.gather(*list(self._cycles.values()), return_exceptions=True)

    async def stop(self) -> None:
        tasks = list(self._cycles.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._cycles.clear()
        self._held.clear()

    def _forget(self, tenant_id: str, task: asyncio.Task[None], held: set[PoolKey]) -> None:
        held.clear()
        if self._cycles.get(tenant_id) is task:
            del self._cycles[tenant_id]
        if self._held.get(tenant_id) is held:
            del self._held[tenant_id]

    async def _cycle(self, tenant_id: str, held: set[PoolKey]) -> None:
        keys = [entry.key for entry in self._registry.for_tenant(tenant_id)]
        if not keys:
            log.debug("PreUpdateTenantAsync for %s: no owned pools", tenant_id)
            return
        log.info(
            "tenant %s is being updated: re-registering %d pool(s)",
            tenant_id,
            len(keys),
            extra=log_context(tenant=tenant_id),
        )
        try:
            for key in keys:
                held.add(key)
                await self._unregister(key)
            await asyncio.sleep(self._delay)
        finally:
            held.clear()
        await self._register(keys)
