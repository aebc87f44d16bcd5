"""Registering owned pools with the controller and keeping them registered (octo-spec §3.4, §6).

Paths that register a pool:

* a CommunicationPool is created, resumed at start or changed (kopf handler → :meth:`ensure_registered`);
* every (re)connect (:meth:`on_connected`, the hub's connect hook): every pool is due again,
  ``RegisterOperatorAsync(mode)``, in central mode provision the pools the controller says are deployed
  (never deleting any that it leaves out: a restarted controller knows less), re-register every owned
  pool, and in central mode send one (chunked) ``ReportDeployedStateAsync``;
* the retry loop, every ``POOLREGISTRATIONRETRYSECONDS`` while connected, for pools not registered yet;
* ``PreUpdateTenantAsync``: unregister the tenant's pools, wait, register them again (:mod:`.tenant_updates`).

Paths that unregister a pool all go through :meth:`PoolRegistrationService._unregister`: the last
CommunicationPool naming it is deleted, its object now names another pool, or a tenant update.

In central mode every registration outside the connect hook is followed by a ``ReportDeployedStateAsync``
naming the pool (through the hub's outbox), which covers pools found after the bulk report; pools that
register together are reported together (:mod:`.reverse_sync`).

All registration work on one pool runs under that pool's lock (:mod:`.locks`), so outcomes are recorded
in the order the calls happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from communication_operator.contracts import DeployedPoolDto, ServerMethod
from communication_operator.hub import HubError, NotConnected
from communication_operator.pools.locks import PoolLocks, bounded_gather
from communication_operator.pools.model import CommunicationPoolSpec, PoolKey, PoolRef, pool_context
from communication_operator.pools.pool_pushes import CentralPools
from communication_operator.pools.provisioner import PoolProvisioner
from communication_operator.pools.publishing import OutcomePublisher
from communication_operator.pools.registry import PoolEntry, PoolRegistry
from communication_operator.pools.reports import DeployedWorkloadsSource, NoDeployedWorkloads
from communication_operator.pools.reverse_sync import DeployedStateReporter
from communication_operator.pools.status import PoolStatusWriter, RegistrationOutcome
from communication_operator.pools.tenant_updates import TenantUpdates
from communication_operator.supervision import TaskSupervisor

if TYPE_CHECKING:
    from communication_operator.metrics import OperatorMetrics

log = logging.getLogger(__name__)

UNREGISTERED_LINE = "unregistered pool %s (%s)"
UNREGISTER_FAILED_LINE = "could not unregister pool %s (%s): %s"
# Why a pool is unregistered: the parenthesis of the lines above.
DELETED_CAUSE = "{ref} deleted"
RENAMED_CAUSE = "no CommunicationPool names it now"
TENANT_UPDATE_CAUSE = "for the tenant update"
# UnregisterResult.message, shown by the delete handler.
UNREGISTERED_MESSAGE = "The Communication Controller unregistered the pool"
STILL_NAMED_MESSAGE = "another CommunicationPool still names this pool; kept registered"


class HubPort(Protocol):
    """What the service needs from :class:`communication_operator.hub.HubConnection`."""

    @property
    def connected(self) -> bool: ...

    async def invoke(self, method: ServerMethod, *args: Any, timeout: float | None = None) -> Any: ...

    async def report(self, method: ServerMethod, *args: Any) -> object: ...


@dataclass(frozen=True)
class UnregisterResult:
    """How a CommunicationPool's removal went at the controller."""

    key: PoolKey
    unregistered: bool  # the controller accepted UnregisterPoolAsync
    message: str


class PoolRegistrationService:
    """Registers owned pools (kopf handlers, connect hook, retry loop) and handles the pool pushes."""

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
        self._central_pools = CentralPools(provisioner) if provisioner is not None else None
        self._reports = DeployedStateReporter(
            hub, workloads or NoDeployedWorkloads(), max_message_bytes, is_registered=self._is_registered
        )
        self._retry_seconds = retry_seconds
        self._concurrency = concurrency
        self._outcomes = OutcomePublisher(status, registry, pending_grace=pending_grace)
        self._background: set[asyncio.Task[Any]] = set()
        self._locks = PoolLocks(registry)
        self._tenant_updates = TenantUpdates(
            registry,
            delay=pre_update_delay,
            unregister=lambda key: self._unregister(key, TENANT_UPDATE_CAUSE),
            register=self._register_and_report,
        )
        self._retry_task: asyncio.Task[None] | None = None
        self._supervisor = supervisor or TaskSupervisor(metrics)
        self._stopping = False
        if metrics is not None:
            metrics.count_pools_with(registry.phase_counts)

    def start(self) -> None:
        """Start the registration retry loop (no-op when ``POOLREGISTRATIONRETRYSECONDS`` ≤ 0)."""
        self._stopping = False
        self._outcomes.start()
        if self._retry_seconds > 0 and self._retry_task is None:
            self._retry_task = self._supervisor.spawn(self._retry_loop(), "pool-registration-retry")

    async def stop(self) -> None:
        """Stop background work. Pools stay registered: the controller marks them Offline on disconnect."""
        self._stopping = True
        self._outcomes.stop()
        tasks = [t for t in (self._retry_task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._retry_task = None
        self._background.clear()
        await self._tenant_updates.stop()
        if self._central_pools is not None:
            await self._central_pools.stop()
        await self._reports.stop()

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
        if released is not None:
            log.info(
                "%s now names pool %s instead of %s",
                ref,
                spec.key,
                released,
                extra=pool_context(spec.key, ref),
            )
            await self._unregister(released, RENAMED_CAUSE)
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
        if key in self.registry:
            # Another object names the same pool, so the pool stays owned.
            assert remaining is None
            return UnregisterResult(key, False, STILL_NAMED_MESSAGE)
        refusal = await self._unregister(key, DELETED_CAUSE.format(ref=ref), ref=ref, offline_ok=False)
        if refusal is not None:
            return UnregisterResult(key, False, refusal)
        return UnregisterResult(key, True, UNREGISTERED_MESSAGE)

    async def on_connected(self) -> None:
        """The hub's connect hook; raising makes the hub drop the connection and try again."""
        self.registry.renew_all()
        deployed: list[DeployedPoolDto] = (
            await self._hub.invoke(ServerMethod.REGISTER_OPERATOR, self.central) or []
        )
        if self.central and self._central_pools is not None:
            await self._central_pools.provision_all(deployed)
        elif deployed:
            log.debug("edge mode: ignoring %d deployed cloud pool(s) the controller listed", len(deployed))
        keys = self.registry.keys()
        outcomes = await bounded_gather(
            (self._register(key, report=False, in_hook=True) for key in keys), self._concurrency
        )
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
            waiting = [e.key for e in self._awaiting_registration() if e.state.waiting_for_connection]
            if waiting:
                self._spawn(self._register_and_report(waiting), "pool-register-waiting")
            return
        for entry in self.registry.lose_connection():
            self._outcomes.publish(entry)

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
        self._tenant_updates.start(tenant_id)

    async def wait_for_tenant_cycles(self) -> None:
        """For tests and shutdown: wait until running pre-update cycles are done."""
        await self._tenant_updates.idle()

    async def wait_for_pushes(self) -> None:
        """For tests and benchmarks: wait until queued pool deploys and undeploys are done."""
        if self._central_pools is not None:
            await self._central_pools.idle()

    async def wait_for_reports(self) -> None:
        """For tests and benchmarks: wait until every registration so far is reported (central mode)."""
        await self._reports.flushed()

    async def _register(
        self, key: PoolKey, *, report: bool, in_hook: bool = False
    ) -> RegistrationOutcome | None:
        """Register ``key`` if it is still owned; records and publishes the outcome.

        Returns None if the pool is not owned (any more) or is held by a tenant update. In the
        connect hook a lost connection propagates (the hub retries the whole hook).
        """
        async with self._locks.of(key):
            entry = self.registry.get(key)
            if entry is None or self._tenant_updates.holds(key):
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
            entry.record(outcome)
            self._outcomes.publish(entry)
        if outcome.is_registered:
            # One line per transition: re-registering an already registered pool is not one.
            level = logging.DEBUG if previous is not None and previous.is_registered else logging.INFO
            log.log(level, "registered pool %s", key, extra=pool_context(key))
            if report and self.central:
                await self._reports.report([key])
        return outcome

    async def _register_and_report(self, keys: Sequence[PoolKey]) -> None:
        """Register ``keys``; in central mode then report the registered ones together."""
        outcomes = await bounded_gather(
            (self._register(key, report=False) for key in keys), self._concurrency
        )
        if self.central:
            await self._reports.report(
                [
                    key
                    for key, outcome in zip(keys, outcomes, strict=True)
                    if outcome and outcome.is_registered
                ]
            )

    async def _unregister(
        self, key: PoolKey, cause: str, *, ref: PoolRef | None = None, offline_ok: bool = True
    ) -> str | None:
        """The one way a pool is unregistered: under its lock, where it stops counting as registered.

        Returns None once the controller accepted, else why not (logged here, once). An unreachable
        controller raises :class:`NotConnected` unless ``offline_ok``.
        """
        failure: str | None = None
        try:
            async with self._locks.of(key):
                entry = self.registry.get(key)
                if entry is not None:  # still owned (a tenant update): due again afterwards
                    entry.renew()
                try:
                    await self._hub.invoke(ServerMethod.UNREGISTER_POOL, key.tenant_id, key.pool_rt_id)
                except HubError as exc:
                    failure = exc.hub_message
                except NotConnected as exc:
                    if not offline_ok:
                        raise
                    failure = str(exc)
        finally:
            # Outside the lock: a held lock is never dropped.
            self._locks.drop(key)
        if failure is None:
            log.info(UNREGISTERED_LINE, key, cause, extra=pool_context(key, ref))
        else:
            log.warning(UNREGISTER_FAILED_LINE, key, cause, failure, extra=pool_context(key, ref))
        return failure

    def _is_registered(self, key: PoolKey) -> bool:
        entry = self.registry.get(key)
        return entry is not None and entry.state.accepted

    def _awaiting_registration(self) -> list[PoolEntry]:
        """Pools to register on this connection: not accepted, and not held by a tenant update."""
        return [e for e in self.registry.awaiting_registration() if not self._tenant_updates.holds(e.key)]

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

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self._retry_seconds)
            if not self._hub.connected:
                continue
            waiting = self._awaiting_registration()
            if not waiting:
                continue
            log.info("retrying registration of %d pool(s)", len(waiting))
            try:
                await self._register_and_report([entry.key for entry in waiting])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("registration retry failed; trying again in %.0f s", self._retry_seconds)
