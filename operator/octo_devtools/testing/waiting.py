"""Waiting for an eventually-consistent condition in tests (the cluster, the simulator, the operator)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    timeout: float = 15.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy and return that; on timeout raise
    ``AssertionError`` naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last value: {last!r}")
        await asyncio.sleep(interval)


async def consistently(
    probe: Callable[[], Awaitable[T | None]],
    duration: float,
    interval: float = 0.1,
    what: str = "condition",
) -> None:
    """Poll ``probe`` for ``duration`` seconds; it must stay truthy throughout. On the first falsy value
    raise ``AssertionError`` naming ``what``, when it stopped holding and that value.

    For promises about something that must *not* happen (a second final status, a new helm revision),
    where no event marks the end: ``duration`` is the time in which the thing would have shown."""
    started = time.monotonic()
    deadline = started + duration
    while True:
        value = await probe()
        if not value:
            elapsed = time.monotonic() - started
            raise AssertionError(f"{what} stopped holding after {elapsed:.1f} s; value: {value!r}")
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)


async def settled(
    read: Callable[[], Awaitable[T]],
    quiet_for: float = 1.0,
    timeout: float = 60.0,
    what: str = "value",
) -> T:
    """Read until two reads ``quiet_for`` seconds apart are equal and return that value; on timeout
    raise ``AssertionError`` naming ``what``.

    For a baseline of counters shared with things the test does not control (the API server counts
    every namespace; an earlier test's teardown may still be deleting its resources)."""
    last = await read()
    deadline = time.monotonic() + timeout
    while True:
        await asyncio.sleep(quiet_for)
        current = await read()
        if current == last:
            return current
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} still changing after {timeout:g} s; last value: {current!r}")
        last = current
