"""Controller pushes: validated into DTOs and handled one at a time, in arrival order.

The controller relies on serial handling (octo-spec §1.1). A push that does not fit the contract is
logged and dropped; a workload push that fails validation (:class:`InvalidPush`) goes to the refusal
handler registered for its method, which decides what to report (the workloads front reports a
failed status when the ids can be read). Nothing a push carries ends the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from communication_operator.contracts import (
    CLIENT_METHODS,
    ClientMethod,
    ContractError,
    InvalidPush,
    decode_arguments,
    signature_of,
)

if TYPE_CHECKING:
    from communication_operator.metrics import OperatorMetrics

log = logging.getLogger(__name__)

PushCallback = Callable[..., Awaitable[None]]
RefusalCallback = Callable[[InvalidPush], Awaitable[None]]

_TARGET_SHOWN = 100


@dataclass
class HubStats:
    connects: int = 0
    disconnects: int = 0
    reports_delivered: int = 0
    reports_rejected: int = 0
    pushes_dropped: int = 0


class PushDispatcher:
    def __init__(self, stats: HubStats, metrics: OperatorMetrics | None = None) -> None:
        self._stats = stats
        self._metrics = metrics
        self._handlers: dict[str, PushCallback] = {}
        self._refusals: dict[str, RefusalCallback] = {}
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on(
        self, method: ClientMethod | str, handler: PushCallback, on_invalid: RefusalCallback | None = None
    ) -> None:
        name = signature_of(str(method), CLIENT_METHODS).name
        self._handlers[name] = handler
        if on_invalid is not None:
            self._refusals[name] = on_invalid

    def enqueue(self, target: str, arguments: Any) -> None:
        self._queue.put_nowait((target, arguments))

    async def run(self, ready: asyncio.Event) -> None:
        """Handle queued pushes while ``ready`` (connected and registered), forever."""
        while True:
            target, arguments = await self._queue.get()
            await ready.wait()
            try:
                await self.dispatch(target, arguments)
            except Exception:
                # One push that breaks our decoding must not end the handling of every later push.
                log.exception("handling push %r failed; later pushes go on", target[:_TARGET_SHOWN])

    async def dispatch(self, target: str, arguments: Any) -> None:
        try:
            method = signature_of(target, CLIENT_METHODS).name
        except ContractError:
            self._stats.pushes_dropped += 1
            log.warning("ignoring push %r: not a method of this operator's contract", target[:_TARGET_SHOWN])
            return
        handler = self._handlers.get(method)
        if handler is None:
            log.debug("no handler for push %s", method)
            return
        try:
            decoded = decode_arguments(method, arguments, CLIENT_METHODS)
        except InvalidPush as refused:
            self._stats.pushes_dropped += 1
            if self._metrics is not None:
                self._metrics.record_push_refused(method)
            await self._refuse(refused)
            return
        except ContractError as exc:
            self._stats.pushes_dropped += 1
            log.warning("ignoring malformed push: %s", exc)
            return
        try:
            await handler(*decoded)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler for %s failed; the connection stays up", method)

    async def _refuse(self, refused: InvalidPush) -> None:
        refusal = self._refusals.get(refused.method)
        if refusal is None:
            log.warning("refusing push: %s", refused)
            return
        try:
            await refusal(refused)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("refusal handler for %s failed; the connection stays up", refused.method)
