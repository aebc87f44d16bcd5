"""The hub as the pool and workload services see it: Protocols that :class:`~.HubConnection` satisfies.

The services depend on these ports, never on the connection class, so they run against in-memory
doubles in unit tests; the composition root (:mod:`communication_operator.runtime`) hands them the
real connection, and mypy checks there that it fits.

One ``report`` for everyone: it queues a report for in-order delivery and returns its :data:`Delivery`,
a future that settles once the controller has taken the report (``True``) or it was dropped
(``False``). Callers that do not care ignore it; a double may return ``None`` (nothing to wait for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from communication_operator.contracts import ClientMethod, InvalidPush, ServerMethod

#: What :meth:`ReportPort.report` returns: settles when the report was delivered or dropped.
Delivery = asyncio.Future[bool] | None
#: Handles one controller push; receives the arguments validated into DTOs.
PushHandler = Callable[..., Awaitable[None]]
#: Handles a push whose arguments did not validate (the workload pushes report a failed status).
RefusalHandler = Callable[[InvalidPush], Awaitable[None]]
#: Runs after every (re)connect, before any report or push; if it raises, the hub reconnects.
ConnectedHook = Callable[[], Awaitable[None]]


class ReportPort(Protocol):
    """Queue a report to the controller (``ReportDeployedStateAsync``, workload progress and status)."""

    async def report(self, method: ServerMethod, *args: Any) -> Delivery: ...


class HubPort(ReportPort, Protocol):
    """Reports plus calls that need the controller's answer now (register, unregister, listings)."""

    @property
    def connected(self) -> bool: ...

    async def invoke(self, method: ServerMethod, *args: Any, timeout: float | None = None) -> Any: ...


class PushSource(Protocol):
    """Where services subscribe to the controller's pushes and to every (re)connect."""

    def on(
        self, method: ClientMethod | str, handler: PushHandler, on_invalid: RefusalHandler | None = None
    ) -> None: ...

    def on_connected(self, hook: ConnectedHook) -> None: ...


class ConnectionStateSource(Protocol):
    """Listeners called with ``True`` when the connection is ready and ``False`` when it is lost."""

    state_listeners: list[Callable[[bool], None]]


__all__ = [
    "ConnectedHook",
    "ConnectionStateSource",
    "Delivery",
    "HubPort",
    "PushHandler",
    "PushSource",
    "RefusalHandler",
    "ReportPort",
]
