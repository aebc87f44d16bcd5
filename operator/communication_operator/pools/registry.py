"""The pools this operator owns, and where each one's registration stands.

A pool is owned while at least one live CommunicationPool names it; normally exactly one does, but two
objects naming the same ``(tenantId, poolRtId)`` must not unregister the pool when only one goes away.
The registry is in-memory and rebuilt by kopf's resume handlers after a restart; the durable record is
the CommunicationPool objects themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from communication_operator.pools.model import PoolKey, PoolRef
from communication_operator.pools.status import RegistrationOutcome


@dataclass
class PoolEntry:
    key: PoolKey
    refs: dict[PoolRef, int | None] = field(default_factory=dict)  # object → its metadata.generation
    outcome: RegistrationOutcome | None = None
    # True only while the controller has accepted RegisterPoolAsync on the current connection.
    registered: bool = False
    # Set during a PreUpdateTenantAsync cycle: the retry loop leaves the pool alone.
    suspended: bool = False


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

    def mark_all_unregistered(self) -> None:
        for entry in self._entries.values():
            entry.registered = False

    def awaiting_registration(self) -> list[PoolEntry]:
        return [e for e in self._entries.values() if not e.registered and not e.suspended]
