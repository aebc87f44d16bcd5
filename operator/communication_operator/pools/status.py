"""What a pool's registration came to, and how that shows on the CommunicationPool.

``status.communicationStatus`` keeps the upstream strings (octo-spec §2.3): "In Progress" while a
registration is under way (written before the first registration of a new object, and while the
controller cannot be reached), "Registered" once the controller accepted it, "Failed: <message>" when
it refused or the call failed. ``phase`` and the kstatus-style ``Ready``/``Registered`` conditions
say the same for tools. Every change of the ``Registered`` condition is also posted as a Kubernetes Event.

:class:`PoolStatusWriter` writes in the background: callers publish an outcome and move on, so a
resync of a thousand pools never waits for a thousand API round trips. Outcomes for one object are
written in order and coalesced (only the newest pending one is written), and a write is skipped when
nothing but timestamps would change. The first "In Progress" of a new object waits ``in_progress_delay``
seconds: a registration that is over by then writes its outcome only (one status write instead of two
in a burst of hundreds of pools), while one that takes longer shows "In Progress" meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from communication_operator.kube.objects import EventType, ObjectRef
from communication_operator.pools.kinds import kind_of_ref
from communication_operator.pools.model import PoolRef
from communication_operator.redaction import redact_and_bound

log = logging.getLogger(__name__)


class RegistrationState(StrEnum):
    REGISTERED = "Registered"
    PENDING = "Pending"  # waiting for the controller connection
    FAILED = "Failed"  # the controller refused the registration (or it failed unexpectedly)


class Reason(StrEnum):
    """Condition and Event reasons."""

    REGISTERED = "Registered"
    REGISTERING = "Registering"  # the first registration of a new object is under way (no Event)
    CONTROLLER_UNAVAILABLE = "ControllerUnavailable"
    REGISTRATION_REFUSED = "RegistrationRefused"
    REGISTRATION_ERROR = "RegistrationError"
    UNREGISTERED = "Unregistered"
    UNREGISTER_FAILED = "UnregisterFailed"


COMMUNICATION_STATUS_IN_PROGRESS = "In Progress"
COMMUNICATION_STATUS_REGISTERED = "Registered"
COMMUNICATION_STATUS_FAILED = "Failed: {message}"
REGISTERING_MESSAGE = "Registering the pool with the Communication Controller"
# How long a new object's registration may take before its status shows "In Progress" (app.py).
IN_PROGRESS_DELAY = 1.0
#: Characters of an outcome's message kept (redacted, then cut in the middle); an Event takes 1024.
OUTCOME_MESSAGE_LIMIT = 1024


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RegistrationOutcome:
    state: RegistrationState
    reason: Reason
    message: str
    at: datetime = field(default_factory=utc_now, compare=False)

    def __post_init__(self) -> None:
        # The message reaches the CR status, its conditions and an Event, none of which a log formatter
        # redacts; a controller's refusal or an exception text may echo a secret, at any length.
        bounded = redact_and_bound(self.message, OUTCOME_MESSAGE_LIMIT, separator=" ")
        object.__setattr__(self, "message", bounded)

    @classmethod
    def registered(cls) -> RegistrationOutcome:
        return cls(
            RegistrationState.REGISTERED, Reason.REGISTERED, "The Communication Controller accepted the pool"
        )

    @classmethod
    def in_progress(cls) -> RegistrationOutcome:
        return cls(RegistrationState.PENDING, Reason.REGISTERING, REGISTERING_MESSAGE)

    @classmethod
    def unavailable(cls, detail: str = "") -> RegistrationOutcome:
        message = "Waiting for the connection to the Communication Controller"
        return cls(
            RegistrationState.PENDING,
            Reason.CONTROLLER_UNAVAILABLE,
            f"{message}: {detail}" if detail else message,
        )

    @classmethod
    def refused(cls, controller_message: str) -> RegistrationOutcome:
        return cls(RegistrationState.FAILED, Reason.REGISTRATION_REFUSED, controller_message or "refused")

    @classmethod
    def error(cls, detail: str) -> RegistrationOutcome:
        return cls(RegistrationState.FAILED, Reason.REGISTRATION_ERROR, detail)

    @property
    def is_registered(self) -> bool:
        return self.state is RegistrationState.REGISTERED

    @property
    def communication_status(self) -> str:
        if self.state is RegistrationState.REGISTERED:
            return COMMUNICATION_STATUS_REGISTERED
        if self.state is RegistrationState.PENDING:
            return COMMUNICATION_STATUS_IN_PROGRESS
        return COMMUNICATION_STATUS_FAILED.format(message=self.message)

    @property
    def event_type(self) -> EventType:
        return EventType.NORMAL if self.is_registered else EventType.WARNING

    @property
    def event_message(self) -> str:
        if self.reason is Reason.REGISTRATION_REFUSED:
            return f"The Communication Controller refused the registration: {self.message}"
        return self.message


def render_status(
    outcome: RegistrationOutcome, generation: int | None, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The full status for ``outcome``; condition transition times survive when a condition's status holds."""
    previous = previous or {}
    old_conditions = {
        c.get("type"): c for c in previous.get("conditions") or [] if isinstance(c, Mapping) and c.get("type")
    }
    registered_status = {
        RegistrationState.REGISTERED: "True",
        RegistrationState.PENDING: "Unknown",
        RegistrationState.FAILED: "False",
    }[outcome.state]
    ready_status = "True" if outcome.is_registered else "False"

    def condition(kind: str, status: str) -> dict[str, Any]:
        old = old_conditions.get(kind) or {}
        changed = old.get("status") != status
        result: dict[str, Any] = {
            "type": kind,
            "status": status,
            "reason": str(outcome.reason),
            "message": outcome.message,
            "lastTransitionTime": _timestamp(outcome.at) if changed else old.get("lastTransitionTime"),
        }
        if result["lastTransitionTime"] is None:
            result["lastTransitionTime"] = _timestamp(outcome.at)
        if generation is not None:
            result["observedGeneration"] = generation
        return result

    status: dict[str, Any] = {
        "communicationStatus": outcome.communication_status,
        "phase": str(outcome.state),
        "conditions": [condition("Ready", ready_status), condition("Registered", registered_status)],
    }
    if generation is not None:
        status["observedGeneration"] = generation
    if outcome.is_registered:
        status["lastRegistrationTime"] = _timestamp(outcome.at)
    elif previous.get("lastRegistrationTime"):
        status["lastRegistrationTime"] = previous["lastRegistrationTime"]
    return status


def _significant(status: Mapping[str, Any] | None) -> Any:
    """What a status says, without its timestamps: equal means there is nothing to write."""
    if not status:
        return None
    conditions = tuple(
        (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
        for c in status.get("conditions") or []
        if isinstance(c, Mapping)
    )
    return (
        status.get("communicationStatus"),
        status.get("phase"),
        status.get("observedGeneration"),
        conditions,
    )


def _registered_condition(status: Mapping[str, Any] | None) -> Any:
    for c in (status or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == "Registered":
            return (c.get("status"), c.get("reason"), c.get("message"))
    return None


class StatusPort(Protocol):
    """The Kubernetes calls the writer needs (:class:`communication_operator.kube.KubeObjects` has them)."""

    async def patch_custom_status(
        self, group: str, version: str, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> bool: ...

    async def post_event(self, ref: ObjectRef, event_type: EventType, reason: str, message: str) -> None: ...


def object_ref(ref: PoolRef) -> ObjectRef:
    return kind_of_ref(ref).object_ref(ref)


class PoolStatusWriter:
    def __init__(
        self,
        kube: StatusPort,
        *,
        concurrency: int = 8,
        retry_delays: tuple[float, ...] = (0.5, 2.0),
        in_progress_delay: float = 0.0,
    ) -> None:
        self._kube = kube
        self._slots = asyncio.Semaphore(concurrency)
        self._retry_delays = retry_delays
        self._in_progress_delay = in_progress_delay
        self._written: dict[PoolRef, dict[str, Any]] = {}  # what the object's status says, as far as we know
        self._pending: dict[PoolRef, tuple[RegistrationOutcome, int | None]] = {}
        # Outcomes not to be written before a moment (loop time); a newer outcome replaces them at once.
        self._not_before: dict[PoolRef, float] = {}
        self._superseded: dict[PoolRef, asyncio.Event] = {}
        self._workers: dict[PoolRef, asyncio.Task[None]] = {}
        self._closed = False

    def seed(self, ref: PoolRef, status: Mapping[str, Any] | None) -> None:
        """Tell the writer what the object's status says now (first sight only; later we know better)."""
        if ref not in self._written and status:
            self._written[ref] = dict(status)

    def begin(self, ref: PoolRef, generation: int | None) -> None:
        """Show "In Progress" on an object that has no status yet, before its registration is tried.

        Objects that already show an outcome keep it until the new one is known (no flapping on a
        resync). Coalescing still applies: an outcome published before this is written replaces it.
        """
        if ref not in self._written and ref not in self._pending:
            self.publish(ref, RegistrationOutcome.in_progress(), generation)
            if self._in_progress_delay > 0 and ref in self._pending:
                self._not_before[ref] = asyncio.get_running_loop().time() + self._in_progress_delay

    def forget(self, ref: PoolRef) -> None:
        self._written.pop(ref, None)
        self._pending.pop(ref, None)
        self._supersede(ref)

    def publish(self, ref: PoolRef, outcome: RegistrationOutcome, generation: int | None) -> None:
        """Queue ``outcome`` for ``ref``; returns at once. A newer outcome replaces a queued one."""
        if self._closed:
            return
        self._pending[ref] = (outcome, generation)
        self._supersede(ref)
        if ref not in self._workers:
            self._workers[ref] = asyncio.create_task(self._drain(ref), name=f"pool-status-{ref}")

    async def flush(self) -> None:
        """Wait until everything published so far has been written (or given up on)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.flush()
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def post_event(self, ref: PoolRef, event_type: EventType, reason: str, message: str) -> None:
        """Post one Event now; failures are logged, never raised (an Event is not worth a retry loop)."""
        try:
            await self._kube.post_event(object_ref(ref), event_type, reason, message)
        except Exception as exc:
            log.warning("could not post event %s on %s: %s", reason, ref, exc)

    def _supersede(self, ref: PoolRef) -> None:
        self._not_before.pop(ref, None)
        superseded = self._superseded.pop(ref, None)
        if superseded is not None:
            superseded.set()

    async def _wait_unless_superseded(self, ref: PoolRef, not_before: float) -> None:
        superseded = self._superseded[ref] = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(not_before):
                await superseded.wait()
        if self._superseded.get(ref) is superseded:
            del self._superseded[ref]

    async def _drain(self, ref: PoolRef) -> None:
        try:
            while ref in self._pending:
                not_before = self._not_before.pop(ref, None)
                if not_before is not None:
                    await self._wait_unless_superseded(ref, not_before)
                    if ref not in self._pending:
                        break  # forgotten meanwhile
                outcome, generation = self._pending.pop(ref)
                async with self._slots:
                    await self._write(ref, outcome, generation)
        finally:
            self._workers.pop(ref, None)

    async def _write(self, ref: PoolRef, outcome: RegistrationOutcome, generation: int | None) -> None:
        previous = self._written.get(ref)
        if generation is None and previous is not None:
            generation = previous.get("observedGeneration")
        status = render_status(outcome, generation, previous)
        if _significant(status) == _significant(previous):
            return
        for attempt, delay in enumerate((*self._retry_delays, None)):
            try:
                exists = await self._kube.patch_custom_status(
                    *kind_of_ref(ref).resource, ref.namespace, ref.name, status
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if delay is None:
                    log.warning(
                        "could not write the status of %s after %d attempts: %s", ref, attempt + 1, exc
                    )
                    self._written.pop(ref, None)  # unknown now: the next outcome is written unconditionally
                    return
                log.debug("writing the status of %s failed (%s); retrying in %.1f s", ref, exc, delay)
                await asyncio.sleep(delay)
                continue
            if not exists:
                log.debug("%s is gone; its status is not written", ref)
                self._written.pop(ref, None)
                return
            break
        self._written[ref] = status
        if outcome.reason is not Reason.REGISTERING and _registered_condition(
            status
        ) != _registered_condition(previous):
            await self.post_event(ref, outcome.event_type, str(outcome.reason), outcome.event_message)
