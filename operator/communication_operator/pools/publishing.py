"""Telling a pool's CommunicationPool objects about its registration outcome, with a grace for outages.

A short outage (a controller restart, the operator's own start) should not flip every pool's status
twice: a "waiting for the controller" outcome is published only if it is still the pool's outcome
``pending_grace`` seconds later. Every other outcome is published at once. The writes themselves are
queued and coalesced by :class:`~communication_operator.pools.status.PoolStatusWriter`.
"""

from __future__ import annotations

import asyncio

from communication_operator.pools.registry import PoolEntry, PoolRegistry
from communication_operator.pools.status import PoolStatusWriter, RegistrationOutcome, RegistrationState


class OutcomePublisher:
    def __init__(self, status: PoolStatusWriter, registry: PoolRegistry, *, pending_grace: float) -> None:
        self._status = status
        self._registry = registry
        self._pending_grace = pending_grace
        self._deferred: set[asyncio.TimerHandle] = set()
        self._stopped = False

    def publish(self, entry: PoolEntry) -> None:
        """Publish ``entry``'s current outcome to each object naming the pool (a pending one deferred)."""
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
        self._write(entry, outcome)

    def start(self) -> None:
        self._stopped = False

    def stop(self) -> None:
        """Drop deferred publications (the service is stopping; statuses stay as they are)."""
        self._stopped = True
        for handle in self._deferred:
            handle.cancel()
        self._deferred.clear()

    def _publish_if_unchanged(self, entry: PoolEntry, outcome: RegistrationOutcome) -> None:
        if self._stopped or entry.outcome is not outcome or self._registry.get(entry.key) is not entry:
            return
        self._write(entry, outcome)

    def _write(self, entry: PoolEntry, outcome: RegistrationOutcome) -> None:
        for ref, generation in entry.refs.items():
            self._status.publish(ref, outcome, generation)
