"""Sending ``ReportDeployedStateAsync`` (central mode's reverse sync, octo-spec §6.3e and §6.5).

Two paths:

* :meth:`DeployedStateReporter.report_now`: the connect hook's bulk report, invoked directly so that it
  reaches the controller after the registrations and before any queued report;
* :meth:`DeployedStateReporter.report`: every registration outside the hook. Pools that register
  together (a controller deploying hundreds of pools at once, a tenant pre-update, the retry loop)
  share one listing of the deployed workloads and one report, chunked under the message limit and
  queued in the hub's outbox. A batch starts at once when none is being sent and the last one
  started at least ``min_interval`` ago; its caller waits until it is queued. Pools that arrive
  otherwise join the next batch, sent in the background when the interval is over, and their callers
  return at once. A lone registration is reported before it returns, and a burst or a steady stream
  of registrations (a controller deploying hundreds of pools one push after another) costs one
  listing and one report per ``min_interval``, not one per pool.

The controller handles each pool of a report on its own (octo-spec §1.2), so reporting pools together
or one by one has the same effect there. A report also re-registers its pools at the controller, so a
batch names only pools that are still registered when it is sent (one unregistered meanwhile, its
CommunicationPool deleted or its tenant being updated, is left out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence

from communication_operator.contracts import ServerMethod
from communication_operator.hub import HubError, MessageTooLarge
from communication_operator.hub.ports import HubPort
from communication_operator.pools.model import PoolKey
from communication_operator.pools.reports import DeployedWorkloadsSource, build_reports, chunk_reports

log = logging.getLogger(__name__)

# How often at most a burst lists the deployed workloads and sends a report: a pool's report waits at
# most this long, and a thousand registrations in a few seconds cost a handful of listings.
DEFAULT_MIN_INTERVAL = 0.5


class DeployedStateReporter:
    def __init__(
        self,
        hub: HubPort,
        workloads: DeployedWorkloadsSource,
        max_message_bytes: int,
        *,
        is_registered: Callable[[PoolKey], bool] = lambda key: True,
        min_interval: float = DEFAULT_MIN_INTERVAL,
    ) -> None:
        self._hub = hub
        self._min_interval = min_interval
        self._last_batch = -math.inf
        self._is_registered = is_registered
        self._workloads = workloads
        self._max_message_bytes = max_message_bytes
        self._pending: set[PoolKey] = set()
        self._next_batch: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None

    async def report_now(self, keys: Collection[PoolKey]) -> None:
        """Invoke the report for ``keys`` now (the connect hook); a refusal is logged, not raised."""
        reports = build_reports(keys, await self._workload_ids())
        chunks = chunk_reports(reports, self._max_message_bytes)
        for chunk in chunks:
            try:
                await self._hub.invoke(ServerMethod.REPORT_DEPLOYED_STATE, chunk)
            except HubError as exc:
                log.warning("the controller refused the deployed-state report: %s", exc.hub_message)
                return
            except MessageTooLarge as exc:
                log.error("deployed-state report not sent: %s", exc)
                return
        log.info("reported %d deployed pool(s) in %d message(s)", len(reports), len(chunks))

    async def report(self, keys: Collection[PoolKey]) -> None:
        """Report ``keys`` (queued in the hub's outbox).

        With no report sent within ``min_interval`` and none being sent, the report is made now and this
        returns once it is queued (its errors are raised here). Otherwise the pools join the next batch,
        which a background task sends when the interval is over, and this returns at once.
        """
        if not keys:
            return
        self._pending.update(keys)
        if self._sender is not None and not self._sender.done():
            return  # the running sender takes them with its next batch
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] | None = None
        if loop.time() >= self._last_batch + self._min_interval:
            waiter = self._next_batch = loop.create_future()
            waiter.add_done_callback(_retrieve)  # a cancelled caller leaves nobody to look at it
        self._sender = asyncio.create_task(self._send_batches(), name="deployed-state-report")
        if waiter is not None:
            # Cancelling this caller must not cancel the send (other pools may have joined the batch).
            await asyncio.shield(waiter)

    async def flushed(self) -> None:
        """Wait until every pool passed to :meth:`report` so far is reported (tests, benchmarks)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender])

    async def stop(self) -> None:
        """Stop sending; pools not reported yet are dropped (a waiting caller sees a cancellation)."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        batch, self._next_batch = self._next_batch, None
        self._pending.clear()
        if batch is not None:
            batch.cancel()

    async def _send_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            wait = self._last_batch + self._min_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # more pools join this batch meanwhile
            self._last_batch = loop.time()
            keys, waiter = self._pending, self._next_batch
            self._pending, self._next_batch = set(), None
            try:
                await self._send(keys)
            except asyncio.CancelledError:
                if waiter is not None:
                    waiter.cancel()
                raise
            except Exception as exc:
                if waiter is None:
                    log.exception("the deployed-state report of %d pool(s) failed", len(keys))
                else:
                    waiter.set_exception(exc)
            else:
                if waiter is not None:
                    waiter.set_result(None)

    async def _send(self, keys: Collection[PoolKey]) -> None:
        workloads = await self._workload_ids()
        reports = build_reports([key for key in keys if self._is_registered(key)], workloads)
        if not reports:
            return
        for chunk in chunk_reports(reports, self._max_message_bytes):
            await self._hub.report(ServerMethod.REPORT_DEPLOYED_STATE, chunk)
        log.debug("queued the deployed-state report of %d pool(s)", len(reports))

    async def _workload_ids(self) -> Mapping[tuple[str, str], Sequence[str]]:
        try:
            return await self._workloads.workload_rt_ids_by_pool()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not list deployed workloads; reporting pools only")
            return {}


def _retrieve(batch: asyncio.Future[None]) -> None:
    if not batch.cancelled():
        batch.exception()
