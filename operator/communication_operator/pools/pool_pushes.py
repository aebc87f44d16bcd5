"""Central mode: the controller's ``PoolDeployedAsync``/``PoolUndeployedAsync``, handled side by side,
and the pools ``RegisterOperatorAsync`` lists at each connect (:class:`CentralPools`).

The hub hands pushes over one at a time (the controller relies on serial handling, octo-spec §1.1), and
provisioning a pool takes a few API calls, so a controller deploying hundreds of pools at once would
wait for all of those calls in a row before the last pool even had its CommunicationPool. Instead the
push handler queues the work and returns: the pushes of one pool still run in arrival order (a deploy,
then an undeploy of the same pool), pushes of different pools run side by side, ``concurrency`` at
most. Nothing else depends on their order: a workload push reaches the operator only after the pool is
registered, which needs its CommunicationPool, and a tenant pre-update runs in the background anyway.

Before creating a CommunicationPool the provisioner lists them all, to find one that already names the
pool under another name (one of the same name is found by name anyway). That listing grows with the
pools, and one per push made a burst quadratic: pushes share it (:class:`RecentListing`) for
``PROVISIONED_MAX_AGE`` seconds, and an undeploy invalidates it (the listing would still show the deleted
CommunicationPool). A CommunicationPool created by hand under another name within those seconds for a
pool the controller deploys meanwhile gets a twin; two objects naming one pool are handled (the
registry keeps the pool registered until the last goes). The connect hook lists once for all the pools
the controller names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from communication_operator.contracts import DeployedPoolDto
from communication_operator.logs import log_context
from communication_operator.pools.model import PoolKey
from communication_operator.pools.provisioner import PoolProvisioner

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CONCURRENCY = 16
# How long a listing of the CommunicationPools serves later pushes (see CentralPools).
PROVISIONED_MAX_AGE = 2.0


class RecentListing(Generic[T]):
    """``fetch()``'s result, shared by concurrent callers and reused for ``max_age`` seconds.

    A caller gets the result of a fetch that started at most ``max_age`` before it asked (and after the
    last :meth:`invalidate`). When there is none, it joins the next fetch, which starts as soon as a
    running one ends and serves everybody who asked meanwhile: a running fetch may have started too
    early for the caller. With ``max_age=0`` every caller sees a fetch that started after it asked,
    and N concurrent callers still cost two fetches, not N.
    """

    def __init__(self, fetch: Callable[[], Awaitable[T]], max_age: float = 0.0) -> None:
        self._fetch = fetch
        self._max_age = max_age
        self._result: tuple[float, T] | None = None  # (when its fetch started, result)
        self._valid_from = -math.inf
        self._next: asyncio.Future[T] | None = None
        self._runner: asyncio.Task[None] | None = None

    def invalidate(self) -> None:
        """Results of fetches started before now are not good enough any more."""
        self._valid_from = asyncio.get_running_loop().time()
        self._result = None

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        if self._result is not None:
            started, result = self._result
            if started >= max(loop.time() - self._max_age, self._valid_from) and self._max_age > 0:
                return result
        if self._next is None:
            self._next = loop.create_future()
            self._next.add_done_callback(_retrieve)  # every caller may have been cancelled
        waiter = self._next
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="recent-listing")
        return await asyncio.shield(waiter)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._next is not None:
            waiter, self._next = self._next, None
            started = loop.time()
            try:
                result = await self._fetch()
            except asyncio.CancelledError:
                waiter.cancel()
                raise
            except Exception as exc:
                waiter.set_exception(exc)
            else:
                if started >= self._valid_from:
                    self._result = (started, result)
                waiter.set_result(result)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        waiter, self._next = self._next, None
        if waiter is not None:
            waiter.cancel()
        self._result = None


class PoolPushQueue:
    """Runs each pool's push work in arrival order, different pools concurrently (bounded)."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._last: dict[PoolKey, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: PoolKey, what: str, work: Callable[[], Awaitable[object]]) -> None:
        """Queue ``work`` for pool ``key`` after the work already queued for it; returns at once."""
        previous = self._last.get(key)
        task = asyncio.create_task(self._run(key, what, previous, work), name=f"{what} {key}")
        self._last[key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._forget(key, t))

    async def idle(self) -> None:
        """Wait until all queued work is done (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(
        self,
        key: PoolKey,
        what: str,
        previous: asyncio.Task[None] | None,
        work: Callable[[], Awaitable[object]],
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        async with self._slots:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The next reconnect provisions deployed pools again (RegisterOperatorAsync lists them).
                log.exception("%s failed for pool %s", what, key, extra=_context(key))

    def _forget(self, key: PoolKey, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._last.get(key) is task:
            del self._last[key]


class CentralPools:
    """Provisioning in central mode, for :class:`~.registration.PoolRegistrationService`."""

    def __init__(self, provisioner: PoolProvisioner, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self._provisioner = provisioner
        self._concurrency = concurrency
        self._queue = PoolPushQueue(concurrency)
        self._provisioned = RecentListing(provisioner.provisioned_pools, PROVISIONED_MAX_AGE)

    def pool_deployed(self, pool: DeployedPoolDto) -> None:
        async def provision() -> None:
            await self._provisioner.pool_deployed(pool, provisioned=await self._provisioned.get())

        self._queue.submit(PoolKey(pool.tenant_id, pool.pool_rt_id), "PoolDeployedAsync", provision)

    def pool_undeployed(self, tenant_id: str, pool_rt_id: str) -> None:
        async def unprovision() -> None:
            try:
                await self._provisioner.pool_undeployed(tenant_id, pool_rt_id)
            finally:
                # A listing from before still shows the deleted CommunicationPool: a deploy of the
                # pool queued behind this undeploy would take the pool as provisioned.
                self._provisioned.invalidate()

        self._queue.submit(PoolKey(tenant_id, pool_rt_id), "PoolUndeployedAsync", unprovision)

    async def provision_all(self, deployed: list[DeployedPoolDto]) -> None:
        """The connect hook: objects for every pool the controller lists, one listing for all of them."""
        if not deployed:
            return
        try:
            provisioned = await self._provisioner.provisioned_pools()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "could not list CommunicationPools; deployed pools are provisioned at the next connect"
            )
            return
        slots = asyncio.Semaphore(self._concurrency)

        async def provision(pool: DeployedPoolDto) -> None:
            async with slots:
                try:
                    await self._provisioner.pool_deployed(pool, provisioned=provisioned)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # The cluster may be briefly unreachable; the next reconnect provisions it again.
                    key = PoolKey(pool.tenant_id, pool.pool_rt_id)
                    log.exception("could not provision deployed pool %s", key, extra=_context(key))

        await asyncio.gather(*(provision(pool) for pool in deployed))

    async def idle(self) -> None:
        await self._queue.idle()

    async def stop(self) -> None:
        await self._queue.stop()
        await self._provisioned.stop()


def _context(key: PoolKey) -> dict[str, str]:
    return log_context(tenant=key.tenant_id, pool=key.pool_rt_id)


def _retrieve(future: asyncio.Future[T]) -> None:
    if not future.cancelled():
        future.exception()
