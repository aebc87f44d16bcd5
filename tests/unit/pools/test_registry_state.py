"""One registration state per pool, changed only by :class:`PoolEntry`'s transitions."""

from __future__ import annotations

import sys
import threading

from communication_operator.pools import PoolKey, PoolRef, PoolRegistry, RegistrationOutcome
from communication_operator.pools.registry import PoolState
from communication_operator.pools.status import RegistrationState

KEY = PoolKey("acme", "65f0c0ffee0000000000aaaa")
OTHER = PoolKey("acme", "65f0c0ffee0000000000bbbb")


def test_a_claimed_pool_is_new_and_shows_pending() -> None:
    entry, _ = PoolRegistry().claim(PoolRef("pools", "a"), KEY, 1)
    assert entry.state is PoolState.NEW
    assert entry.phase is RegistrationState.PENDING
    assert not entry.state.accepted


def test_each_outcome_sets_the_state_and_what_the_objects_show() -> None:
    entry, _ = PoolRegistry().claim(PoolRef("pools", "a"), KEY, 1)
    for outcome, state in (
        (RegistrationOutcome.registered(), PoolState.REGISTERED),
        (RegistrationOutcome.unavailable(), PoolState.WAITING),
        (RegistrationOutcome.refused("no such tenant"), PoolState.FAILED),
        (RegistrationOutcome.error("boom"), PoolState.FAILED),
    ):
        entry.record(outcome)
        assert (entry.state, entry.outcome, entry.phase) == (state, outcome, outcome.state)


def test_renewing_keeps_the_shown_status_but_is_no_longer_accepted() -> None:
    entry, _ = PoolRegistry().claim(PoolRef("pools", "a"), KEY, 1)
    shown = RegistrationOutcome.registered()
    entry.record(shown)
    entry.renew()  # a new connection, or unregistered for a tenant update
    assert entry.state is PoolState.RENEWING
    assert (entry.outcome, entry.phase) == (shown, RegistrationState.REGISTERED)
    assert not entry.state.accepted
    entry.record(RegistrationOutcome.refused("no"))
    entry.renew()  # only an accepted pool is renewed
    assert entry.state is PoolState.FAILED


def test_a_lost_connection_turns_only_registered_pools_to_waiting() -> None:
    registry = PoolRegistry()
    registered, _ = registry.claim(PoolRef("pools", "a"), KEY, 1)
    refused, _ = registry.claim(PoolRef("pools", "b"), OTHER, 1)
    registered.record(RegistrationOutcome.registered())
    refused.record(RegistrationOutcome.refused("no"))
    changed = registry.lose_connection()
    assert changed == [registered]
    assert registered.state is PoolState.WAITING
    assert registered.outcome is not None
    assert "the connection was lost" in registered.outcome.message
    assert refused.state is PoolState.FAILED


def test_awaiting_registration_is_every_pool_not_accepted_on_this_connection() -> None:
    registry = PoolRegistry()
    a, _ = registry.claim(PoolRef("pools", "a"), KEY, 1)
    b, _ = registry.claim(PoolRef("pools", "b"), OTHER, 1)
    a.record(RegistrationOutcome.registered())
    assert registry.awaiting_registration() == [b]
    registry.renew_all()  # reconnected: every pool is registered again
    assert sorted(e.key for e in registry.awaiting_registration()) == [KEY, OTHER]


def test_phase_counts_are_computed_from_the_entries() -> None:
    registry = PoolRegistry()
    a, _ = registry.claim(PoolRef("pools", "a"), KEY, 1)
    registry.claim(PoolRef("pools", "b"), OTHER, 1)
    registry.claim(PoolRef("pools", "c"), OTHER, 1)  # two objects, one pool: counted once
    a.record(RegistrationOutcome.refused("no"))
    assert registry.phase_counts() == {"Failed": 1, "Pending": 1}


def test_phase_counts_can_be_read_from_another_thread_while_pools_come_and_go() -> None:
    # The metrics server scrapes on its own thread while the event loop claims and releases pools.
    registry = PoolRegistry()
    stop = threading.Event()
    errors: list[BaseException] = []

    def scrape() -> None:
        while not stop.is_set():
            try:
                registry.phase_counts()
            except BaseException as exc:  # the failure this test is about: "changed size during iteration"
                errors.append(exc)
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: many interleavings, short test
    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for round_ in range(20):
            refs = [PoolRef("pools", f"p{round_}-{i}") for i in range(200)]
            for i, ref in enumerate(refs):
                registry.claim(ref, PoolKey("acme", f"{round_:012x}{i:012x}"), 1)
            for ref in refs:
                registry.release(ref)
    finally:
        stop.set()
        scraper.join()
        sys.setswitchinterval(interval)
    assert errors == []
