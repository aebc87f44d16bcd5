"""The pools this operator owns, and where each one's registration stands.

A pool is owned while at least one live CommunicationPool names it; normally exactly one does, but two
objects naming the same ``(tenantId, poolRtId)`` must not unregister the pool when only one goes away.
The registry is in-memory and rebuilt by kopf's resume handlers after a restart; the durable record is
the CommunicationPool objects themselves.

Each pool has one :class:`PoolState`, changed only by :class:`PoolEntry`'s transitions
(:meth:`~PoolEntry.record`, :meth:`~PoolEntry.renew`, :meth:`~PoolEntry.lose_connection`). The
``pools`` gauge is counted from the entries when it is scraped (:meth:`PoolRegistry.phase_counts`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from communication_operator.pools.model import PoolKey, PoolRef
from communication_operator.pools.status import RegistrationOutcome, RegistrationState

CONNECTION_LOST_DETAIL = "the connection was lost"


class PoolState(Enum):
    """Where one pool's registration with the controller stands."""

    NEW = "new"  # claimed; no registration attempt has finished yet
    REGISTERED = "registered"  # the controller accepted RegisterPoolAsync on the current connection
    # Accepted before a reconnect or a tenant update's unregister: due again, while the objects keep
    # showing "Registered" (a short gap should not flip every pool's status twice).
    RENEWING = "renewing"
    WAITING = "waiting"  # the controller could not be reached
    FAILED = "failed"  # the controller refused the registration, or the call failed

    @property
    def accepted(self) -> bool:
        """Whether the controller holds the pool registered on this connection (what reports may claim)."""
        return self is PoolState.REGISTERED

    @property
    def waiting_for_connection(self) -> bool:
        return self in (PoolState.NEW, PoolState.WAITING)


_STATE_AFTER: dict[RegistrationState, PoolState] = {
    RegistrationState.REGISTERED: PoolState.REGISTERED,
    RegistrationState.PENDING: PoolState.WAITING,
    RegistrationState.FAILED: PoolState.FAILED,
}


@dataclass
class PoolEntry:
    key: PoolKey
    refs: dict[PoolRef, int | None] = field(default_factory=dict)  # object → its metadata.generation
    state: PoolState = PoolState.NEW
    # What the objects are told (None until the first attempt finishes); set by the transitions only.
    outcome: RegistrationOutcome | None = None

    @property
    def phase(self) -> RegistrationState:
        """The phase the objects show (and the ``pools`` gauge counts)."""
        return self.outcome.state if self.outcome is not None else RegistrationState.PENDING

    def record(self, outcome: RegistrationOutcome) -> None:
        """A registration attempt ended with ``outcome``."""
        self.outcome = outcome
        self.state = _STATE_AFTER[outcome.state]

    def renew(self) -> None:
        """The controller no longer holds the pool (a new connection, or unregistered for a tenant update)."""
        if self.state is PoolState.REGISTERED:
            self.state = PoolState.RENEWING

    def lose_connection(self) -> bool:
        """The connection dropped: a pool shown as registered now waits. True if its outcome changed."""
        if self.state not in (PoolState.REGISTERED, PoolState.RENEWING):
            return False
        self.record(RegistrationOutcome.unavailable(CONNECTION_LOST_DETAIL))
        return True


class PoolRegistry:
    def __init__(self) -> None:
        self._entries: dict[PoolKey, PoolEntry] = {}
        self._key_of: dict[PoolRef, PoolKey] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[PoolEntry]:
        return iter(list(self._entries.values()))

    def get(self, key: PoolKey) -> PoolEntry | None:
        return self._entries.get(key)

    def key_of(self, ref: PoolRef) -> PoolKey | None:
        return self._key_of.get(ref)

    def keys(self) -> list[PoolKey]:
        return sorted(self._entries)

    def claim(self, ref: PoolRef, key: PoolKey, generation: int | None) -> tuple[PoolEntry, PoolKey | None]:
        """Record that ``ref`` names ``key``. Returns the entry and, if ``ref`` named another pool before
        and was its last claimant, that pool's key (no longer owned: the caller unregisters it)."""
        released: PoolKey | None = None
        previous = self._key_of.get(ref)
        if previous is not None and previous != key:
            released = self.release(ref)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = PoolEntry(key)
        entry.refs[ref] = generation
        self._key_of[ref] = key
        return entry, released

    def release(self, ref: PoolRef) -> PoolKey | None:
        """Forget ``ref``; returns its pool's key if no other object names that pool any more."""
        key = self._key_of.pop(ref, None)
        if key is None:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        entry.refs.pop(ref, None)
        if entry.refs:
            return None
        del self._entries[key]
        return key

    def for_tenant(self, tenant_id: str) -> list[PoolEntry]:
        return [e for e in self._entries.values() if e.key.tenant_id == tenant_id]

    def renew_all(self) -> None:
        """A new connection: no pool is registered on it yet."""
        for entry in self._entries.values():
            entry.renew()

    def lose_connection(self) -> list[PoolEntry]:
        """The connection dropped; returns the entries whose outcome changed (to publish)."""
        return [entry for entry in self._entries.values() if entry.lose_connection()]

    def awaiting_registration(self) -> list[PoolEntry]:
        return [e for e in self._entries.values() if not e.state.accepted]

    def phase_counts(self) -> dict[str, int]:
        """Owned pools by the phase their objects show (the ``pools`` gauge).

        Called from the metrics server's thread: it only reads, from a snapshot of the entries (copying
        a dict's values is one step under the GIL, so a registration on the loop cannot break it).
        """
        counts = Counter(
            RegistrationState.PENDING if entry.outcome is None else entry.outcome.state
            for entry in list(self._entries.values())
        )
        return {phase.value: count for phase, count in counts.items()}
