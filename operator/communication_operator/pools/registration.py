"""Registering owned pools with the controller and keeping them registered (octo-spec §3.4, §6).

Paths that register a pool:

* a CommunicationPool is created, resumed at start or changed (kopf handler → :meth:`ensure_registered`);
* every (re)connect (:meth:`on_connected`, the hub's connect hook): mark everything unregistered,
  ``RegisterOperatorAsync(mode)``, in central mode provision the pools the controller says are deployed
  (never deleting any that it leaves out: a restarted controller knows less), re-register every owned
  pool, and in central mode send one (chunked) ``ReportDeployedStateAsync``;
* the retry loop, every ``POOLREGISTRATIONRETRYSECONDS`` while connected, for pools not registered yet;
* ``PreUpdateTenantAsync``: unregister the tenant's pools, wait, register them again.

In central mode every registration outside the connect hook is followed by a ``ReportDeployedStateAsync``
naming the pool (through the hub's outbox), which covers pools found after the bulk report; pools that
register together are reported together (:mod:`.reverse_sync`).

All registration work on one pool runs under that pool's lock, so outcomes are recorded in the order
the calls happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from communication_operator.contracts import ClientMethod, DeployedPoolDto, ServerMethod
from communication_operator.hub import HubError, NotConnected
from communication_operator.hub.ports import HubPort
from communication_operator.logs import log_context
from communication_operator.pools.model import CommunicationPoolSpec, PoolKey, PoolRef
from communication_operator.pools.pool_pushes import CentralPools
from communication_operator.pools.provisioner import PoolProvisioner
from communication_operator.pools.registry import PoolEntry, PoolRegistry
from communication_operator.pools.reports import DeployedWorkloadsSource, NoDeployedWorkloads
from communication_operator.pools.reverse_sync import DeployedStateReporter
from communication_operator.pools.status import PoolStatusWriter, RegistrationOutcome, RegistrationState
from communication_operator.supervision import TaskSupervisor

if TYPE_CHECKING:
    from communication_operator.metrics import OperatorMetrics

log = logging.getLogger(__name__)


def pool_context(key: PoolKey, ref: PoolRef | None = None) -> dict[str, str]:
    """``extra=`` for a log line about a pool (and the CommunicationPool object, if one is meant)."""
    if ref is None:
        return log_context(tenant=key.tenant_id, pool=key.pool_rt_id)
    return log_context(tenant=key.tenant_id, pool=key.pool_rt_id, namespace=ref.namespace, name=ref.name)


@dataclass(frozen=True)
class UnregisterResult:
    """How a CommunicationPool's removal went at the controller."""

    key: PoolKey
    unregistered: bool  # the controller accepted UnregisterPoolAsync
    message: str


class PoolRegistrationService:
    def __init__(
        self,
        hub: HubPort,
        registry: PoolRegistry,
        status: PoolStatusWriter,
        *,
        central: bool,
        provisioner: PoolProvisioner | None = None,
        workloads: DeployedWorkloadsSource | None = None,
        retry_seconds: float = 30.0,
        pre_update_delay: float = 5.0,
        max_message_bytes: int = 32 * 1024,
        concurrency: int = 32,
        pending_grace: float = 10.0,
        metrics: OperatorMetrics | None = None,
        supervisor: TaskSupervisor | None = None,
    ) -> None:
        if central and provisioner is None:
            raise ValueError("central mode needs a PoolProvisioner")
        self._hub = hub
        self.registry = registry
        self._status = status
        self.central = central
        self._provisioner = provisioner
        self._central_pools = CentralPools(provisioner) if provisioner is not None else None
        self._reports = DeployedStateReporter(
            hub, workloads or NoDeployedWorkloads(), max_message_bytes, is_registered=self._is_registered
        )
        self._retry_seconds = retry_seconds
        self._pre_update_delay = pre_update_delay
        self._concurrency = concurrency
        # A short outage (a controller restart, the operator's own start) should not flip every pool's
        # status twice: "waiting for the controller" is shown only if it lasts this long.
        self._pending_grace = pending_grace
        self._deferred: set[asyncio.TimerHandle] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._locks: dict[PoolKey, asyncio.Lock] = {}
        self._tenant_cycles: dict[str, asyncio.Task[None]] = {}
        self._retry_task: asyncio.Task[None] | None = None
        self._supervisor = supervisor or TaskSupervisor(metrics)
        self._stopping = False
        # The pools gauge, kept incrementally: a resync of many pools must not recount all of them
        # on every registration.
        self._metrics = metrics
        self._phase_of: dict[PoolKey, str] = {}
        self._phase_counts: Counter[str] = Counter()
        if metrics is not None:
            metrics.set_pool_phases({})

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the registration retry loop (no-op when ``POOLREGISTRATIONRETRYSECONDS`` ≤ 0)."""
        self._stopping = False
        if self._retry_seconds > 0 and self._retry_task is None:
            self._retry_task = self._supervisor.spawn(self._retry_loop(), "pool-registration-retry")

    async def stop(self) -> None:
        """Stop background work. Pools stay registered: the controller marks them Offline on disconnect."""
        self._stopping = True
        for handle in self._deferred:
            handle.cancel()
        self._deferred.clear()
        tasks = [
            t for t in (self._retry_task, *self._tenant_cycles.values(), *self._background) if t is not None
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._retry_task = None
        self._tenant_cycles.clear()
        self._background.clear()
        if self._central_pools is not None:
            await self._central_pools.stop()
        await self._reports.stop()

    # -- CommunicationPool lifecycle (kopf handlers) -------------------------------------------------

    async def ensure_registered(
        self,
        ref: PoolRef,
        spec: CommunicationPoolSpec,
        *,
        generation: int | None = None,
        current_status: Mapping[str, Any] | None = None,
    ) -> RegistrationOutcome:
        """Own the pool ``ref`` names and register it now if the controller is reachable.

        Never raises for controller trouble: the outcome (also written to the object's status) says
        what happened, and the connect hook or the retry loop finishes the job later.
        """
        self._status.seed(ref, current_status)
        self._status.begin(ref, generation)  # "In Progress" while the registration is under way (§2.3)
        entry, released = self.registry.claim(ref, spec.key, generation)
        self._track_phase(entry.key)
        if released is not None:
            self._track_phase(released)
            log.info(
                "%s now names pool %s instead of %s",
                ref,
                spec.key,
                released,
                extra=pool_context(spec.key, ref),
            )
            await self._unregister_quietly(released)
        outcome = await self._register(entry.key, report=True)
        return outcome or RegistrationOutcome.unavailable()

    async def release(self, ref: PoolRef, spec: CommunicationPoolSpec) -> UnregisterResult:
        """The object ``ref`` is being deleted: unregister its pool unless another object still names it.

        Raises :class:`NotConnected` while the controller is unreachable (the caller retries later);
        a controller refusal is a soft failure, reported in the result.
        """
        self._status.forget(ref)
        key = self.registry.key_of(ref) or spec.key
        remaining = self.registry.release(ref)
        self._track_phase(key)
        if key in self.registry:
            # Another object names the same pool, so the pool stays owned.
            assert remaining is None
            return UnregisterResult(
                key, False, "another CommunicationPool still names this pool; kept registered"
            )
        try:
            async with self._lock(key):
                try:
                    await self._hub.invoke(ServerMethod.UNREGISTER_POOL, key.tenant_id, key.pool_rt_id)
                except HubError as exc:
                    log.warning(
                        "the controller refused to unregister pool %s: %s",
                        key,
                        exc.hub_message,
                        extra=pool_context(key, ref),
                    )
                    return UnregisterResult(key, False, exc.hub_message)
        finally:
            # Outside the lock: a held lock is never dropped.
            self._drop_lock(key)
        log.info("unregistered pool %s (%s deleted)", key, ref, extra=pool_context(key, ref))
        return UnregisterResult(key, True, "The Communication Controller unregistered the pool")

    # -- the connection ------------------------------------------------------------------------------

    async def on_connected(self) -> None:
        """The hub's connect hook; raising makes the hub drop the connection and try again."""
        self.registry.mark_all_unregistered()
        deployed: list[DeployedPoolDto] = (
            await self._hub.invoke(ServerMethod.REGISTER_OPERATOR, self.central) or []
        )
        if self.central and self._central_pools is not None:
            await self._central_pools.provision_all(deployed)
        elif deployed:
            log.debug("edge mode: ignoring %d deployed cloud pool(s) the controller listed", len(deployed))
        keys = self.registry.keys()
        outcomes = await self._bounded(self._register(key, report=False, in_hook=True) for key in keys)
        registered = [
            key for key, outcome in zip(keys, outcomes, strict=True) if outcome and outcome.is_registered
        ]
        log.info(
            "registered %d of %d owned pool(s) with the controller (%s mode)",
            len(registered),
            len(keys),
            "central" if self.central else "edge",
        )
        if self.central and registered:
            await self._reports.report_now(registered)

    def on_connection_state(self, connected: bool) -> None:
        """Hub state listener.

        Connected: register the pools that were claimed while the connect hook ran (they could not
        reach the controller then). Lost: registered pools show ``ControllerUnavailable`` (after the
        grace period).
        """
        if self._stopping:
            return
        if connected:
            waiting = [e.key for e in self.registry.awaiting_registration() if _is_pending(e.outcome)]
            if waiting:
                self._spawn(self._register_and_report(waiting), "pool-register-waiting")
            return
        for entry in self.registry:
            entry.registered = False
            if entry.outcome is not None and entry.outcome.is_registered:
                entry.outcome = RegistrationOutcome.unavailable("the connection was lost")
                self._publish(entry)
                self._track_phase(entry.key)

    # -- controller pushes ---------------------------------------------------------------------------

    async def pool_deployed(self, pool: DeployedPoolDto) -> None:
        """Central: queue the pool's provisioning and return (:mod:`.pool_pushes`)."""
        if not self.central or self._central_pools is None:
            log.debug("edge mode: ignoring PoolDeployedAsync for %s/%s", pool.tenant_id, pool.pool_rt_id)
            return
        self._central_pools.pool_deployed(pool)

    async def pool_undeployed(self, tenant_id: str, pool_rt_id: str) -> None:
        """Central: queue the removal of the pool's objects (after any queued work on it) and return."""
        if not self.central or self._central_pools is None:
            log.debug("edge mode: ignoring PoolUndeployedAsync for %s/%s", tenant_id, pool_rt_id)
            return
        self._central_pools.pool_undeployed(tenant_id, pool_rt_id)

    async def pre_update_tenant(self, tenant_id: str) -> None:
        """Start the unregister → wait → re-register cycle in the background (pushes are handled serially,
        so waiting here would hold up every other push)."""
        running = self._tenant_cycles.pop(tenant_id, None)
        if running is not None:
            running.cancel()  # a newer update restarts the cycle
        task = asyncio.create_task(self._pre_update_cycle(tenant_id), name=f"pre-update-tenant-{tenant_id}")
        self._tenant_cycles[tenant_id] = task
        task.add_done_callback(lambda t: self._forget_cycle(tenant_id, t))

    def _forget_cycle(self, tenant_id: str, task: asyncio.Task[None]) -> None:
        if self._tenant_cycles.get(tenant_id) is task:
            del self._tenant_cycles[tenant_id]

    async def wait_for_tenant_cycles(self) -> None:
        """For tests and shutdown: wait until running pre-update cycles are done."""
        while self._tenant_cycles:
            await asyncio.gather(*list(self._tenant_cycles.values()), return_exceptions=True)

    async def wait_for_pushes(self) -> None:
        """For tests and benchmarks: wait until queued pool deploys and undeploys are done."""
        if self._central_pools is not None:
            await self._central_pools.idle()

    async def wait_for_reports(self) -> None:
        """For tests and benchmarks: wait until every registration so far is reported (central mode)."""
        await self._reports.flushed()

    # -- internals -----------------------------------------------------------------------------------

    def _lock(self, key: PoolKey) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _drop_lock(self, key: PoolKey) -> None:
        lock = self._locks.get(key)
        if key not in self.registry and lock is not None and not lock.locked():
            del self._locks[key]

    async def _register(
        self, key: PoolKey, *, report: bool, in_hook: bool = False
    ) -> RegistrationOutcome | None:
        """Register ``key`` if it is still owned; records and publishes the outcome.

        Returns None if the pool is not owned (any more) or is suspended by a tenant update. In the
        connect hook a lost connection propagates (the hub retries the whole hook).
        """
        async with self._lock(key):
            entry = self.registry.get(key)
            if entry is None or entry.suspended:
                return None
            previous = entry.outcome
            try:
                await self._hub.invoke(ServerMethod.REGISTER_POOL, key.tenant_id, key.pool_rt_id)
            except HubError as exc:
                outcome = RegistrationOutcome.refused(exc.hub_message)
                # Said once per refusal, not on every retry.
                level = logging.DEBUG if outcome == entry.outcome else logging.WARNING
                log.log(
                    level, "the controller refused pool %s: %s", key, exc.hub_message, extra=pool_context(key)
                )
            except NotConnected as exc:
                if in_hook:
                    raise
                outcome = RegistrationOutcome.unavailable()
                log.debug("pool %s not registered yet: %s", key, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcome = RegistrationOutcome.error(f"{type(exc).__name__}: {exc}")
                log.exception("registering pool %s failed", key, extra=pool_context(key))
            else:
                outcome = RegistrationOutcome.registered()
            entry.registered = outcome.is_registered
            entry.outcome = outcome
            self._publish(entry)
            self._track_phase(key)
        if outcome.is_registered:
            # One line per transition: re-registering an already registered pool is not one.
            level = logging.DEBUG if previous is not None and previous.is_registered else logging.INFO
            log.log(level, "registered pool %s", key, extra=pool_context(key))
            if report and self.central:
                await self._reports.report([key])
        return outcome

    async def _register_and_report(self, keys: Sequence[PoolKey]) -> None:
        """Register ``keys``; in central mode then report the registered ones together."""
        outcomes = await self._bounded(self._register(key, report=False) for key in keys)
        if self.central:
            await self._reports.report(
                [
                    key
                    for key, outcome in zip(keys, outcomes, strict=True)
                    if outcome and outcome.is_registered
                ]
            )

    def _is_registered(self, key: PoolKey) -> bool:
        entry = self.registry.get(key)
        return entry is not None and entry.registered

    def _track_phase(self, key: PoolKey) -> None:
        """Update the pools gauge for ``key``'s current phase (or its removal); O(1) per call."""
        entry = self.registry.get(key)
        phase: str | None = None
        if entry is not None:
            phase = (entry.outcome.state if entry.outcome is not None else RegistrationState.PENDING).value
        old = self._phase_of.get(key)
        if old == phase:
            return
        if old is not None:
            self._phase_counts[old] -= 1
        if phase is None:
            self._phase_of.pop(key, None)
        else:
            self._phase_of[key] = phase
            self._phase_counts[phase] += 1
        if self._metrics is not None:
            self._metrics.set_pool_phases(self._phase_counts)

    def phase_counts(self) -> dict[str, int]:
        """Owned pools by registration phase (what the ``pools`` gauge shows)."""
        return {phase: count for phase, count in self._phase_counts.items() if count}

    def _publish(self, entry: PoolEntry) -> None:
        outcome = entry.outcome
        if outcome is None:
            return
        if outcome.state is RegistrationState.PENDING and self._pending_grace > 0:
            handle: asyncio.TimerHandle

            def fire() -> None:
                self._deferred.discard(handle)
                self._publish_if_unchanged(entry, outcome)

            handle = asyncio.get_running_loop().call_later(self._pending_grace, fire)
            self._deferred.add(handle)
            return
        for ref, generation in entry.refs.items():
            self._status.publish(ref, outcome, generation)

    def _publish_if_unchanged(self, entry: PoolEntry, outcome: RegistrationOutcome) -> None:
        if self._stopping or entry.outcome is not outcome or self.registry.get(entry.key) is not entry:
            return
        for ref, generation in entry.refs.items():
            self._status.publish(ref, outcome, generation)

    def _spawn(self, work: Awaitable[Any], name: str) -> None:
        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _unregister_quietly(self, key: PoolKey) -> None:
        async with self._lock(key):
            try:
                await self._hub.invoke(ServerMethod.UNREGISTER_POOL, key.tenant_id, key.pool_rt_id)
            except (HubError, NotConnected) as exc:
                log.warning("could not unregister pool %s: %s", key, exc, extra=pool_context(key))
            else:
                log.info(
                    "unregistered pool %s (no CommunicationPool names it now)", key, extra=pool_context(key)
                )
        self._drop_lock(key)

    async def _bounded(
        self, calls: Iterable[Awaitable[RegistrationOutcome | None]]
    ) -> list[RegistrationOutcome | None]:
        slots = asyncio.Semaphore(self._concurrency)

        async def one(call: Awaitable[RegistrationOutcome | None]) -> RegistrationOutcome | None:
            async with slots:
                return await call

        # gather copies the context into each task, so the hub still sees them as part of its hook.
        return list(await asyncio.gather(*(one(c) for c in calls)))

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self._retry_seconds)
            if not self._hub.connected:
                continue
            waiting = self.registry.awaiting_registration()
            if not waiting:
                continue
            log.info("retrying registration of %d pool(s)", len(waiting))
            try:
                await self._register_and_report([entry.key for entry in waiting])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("registration retry failed; trying again in %.0f s", self._retry_seconds)

    async def _pre_update_cycle(self, tenant_id: str) -> None:
        entries = self.registry.for_tenant(tenant_id)
        if not entries:
            log.debug("PreUpdateTenantAsync for %s: no owned pools", tenant_id)
            return
        log.info("tenant %s is being updated: re-registering %d pool(s)", tenant_id, len(entries))
        try:
            for entry in entries:
                entry.suspended = True
                async with self._lock(entry.key):
                    entry.registered = False
                    try:
                        await self._hub.invoke(ServerMethod.UNREGISTER_POOL, tenant_id, entry.key.pool_rt_id)
                    except (HubError, NotConnected) as exc:
                        log.warning(
                            "could not unregister pool %s before the tenant update: %s",
                            entry.key,
                            exc,
                            extra=pool_context(entry.key),
                        )
                    else:
                        log.info(
                            "unregistered pool %s for the tenant update",
                            entry.key,
                            extra=pool_context(entry.key),
                        )
            await asyncio.sleep(self._pre_update_delay)
        finally:
            for entry in entries:
                entry.suspended = False
        await self._register_and_report([entry.key for entry in entries])


class PushSource(Protocol):
    """The parts of :class:`~communication_operator.hub.HubConnection` :func:`bind_to_hub` uses."""

    state_listeners: list[Callable[[bool], None]]

    def on(self, method: ClientMethod | str, handler: Callable[..., Awaitable[None]]) -> None: ...

    def on_connected(self, hook: Callable[[], Awaitable[None]]) -> None: ...


def bind_to_hub(hub: PushSource, service: PoolRegistrationService) -> None:
    """Wire the service to the hub: connect hook, state listener and the pool pushes."""
    hub.on_connected(service.on_connected)
    hub.state_listeners.append(service.on_connection_state)
    hub.on(ClientMethod.POOL_DEPLOYED, service.pool_deployed)
    hub.on(ClientMethod.POOL_UNDEPLOYED, service.pool_undeployed)
    hub.on(ClientMethod.PRE_UPDATE_TENANT, service.pre_update_tenant)


def _is_pending(outcome: RegistrationOutcome | None) -> bool:
    return outcome is None or outcome.state is RegistrationState.PENDING
