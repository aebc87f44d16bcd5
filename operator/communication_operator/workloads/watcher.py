"""Live failure signals while helm runs: watch the release's pods and the namespace's Warning events.

Two watches (:func:`~communication_operator.kube.watch_stream.watch_stream`, never polling) feed one
:class:`~.signals.signalset.SignalSet`:

* pods labelled ``app.kubernetes.io/instance=<release>`` in the pool namespace;
* Events with ``type=Warning`` in that namespace, kept when :func:`~.signals.events.event_concerns_release`
  says they are about the release (named after it, or about one of its pods). That includes
  ``FailedCreate`` on the release's ReplicaSets and Jobs, the only trace of a quota or admission
  refusal, where no pod ever appears.

Each watch starts with a list (which gives a resourceVersion), then watches from there; when the
server ends a watch (its timeout) it is reopened from the last resourceVersion seen (bookmarks
included), and when that version has expired (HTTP 410 Gone) the watch lists again and forgets objects
that disappeared meanwhile.

Pod and event objects are redacted of the deploy's secrets as they arrive (messages and reasons, as
one-line texts; :func:`~.diagnostics.redact_api_object`), before they are classified or stored.
Whenever the diagnostics text (upstream's lines, :mod:`.diagnostics`) changes and is not empty, it
is handed to ``on_progress`` (the deploy sends it as a progress report). A third task sleeps until
:meth:`SignalSet.next_deadline`, so a problem that turns fatal by persisting alone is noticed on
time without any polling. :attr:`ReleaseWatcher.fatal` is set as soon as the fail-fast policy calls a
signal hopeless; the deploy then stops helm.

``on_latency`` (the operator passes ``OperatorMetrics.observe_signal_to_report``) gets, for each
progress report caused by a watch event or a relist, the seconds from that event's arrival at the
watcher to the controller taking the report (the hub settles the sink's future at delivery; a report
replaced by a newer one before delivery is not measured, nor are reports made because a signal aged
into fatality, which have no event).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.kube.watch_stream import watch_stream
from communication_operator.workloads.diagnostics import diagnostic_lines, fit_lines, redact_api_object
from communication_operator.workloads.naming import HELM_INSTANCE_LABEL
from communication_operator.workloads.signals.events import event_concerns_release
from communication_operator.workloads.signals.fields import get_path
from communication_operator.workloads.signals.model import Signal
from communication_operator.workloads.signals.policy import FailFastPolicy
from communication_operator.workloads.signals.signalset import SignalSet

log = logging.getLogger(__name__)

#: Queues a progress text; may return a future that settles (True) once the controller has it.
ProgressSink = Callable[[str], Awaitable["asyncio.Future[bool] | None"]]
#: Receives the seconds from a watch event's arrival to its progress report being handed to the sink.
LatencyObserver = Callable[[float], None]

#: Server-side watch timeout; the watch is reopened from the last resourceVersion afterwards.
WATCH_TIMEOUT_SECONDS = 240
RETRY_DELAY_SECONDS = 1.0
#: Pause after a failed fail-fast deadline round before the next one (no busy loop on a persistent bug).
DEADLINE_RETRY_SECONDS = 1.0
#: How long start() waits for both initial lists before letting helm go anyway.
SYNC_TIMEOUT_SECONDS = 10.0
#: Pods deleted during the deploy whose last state the final diagnostics still show (helm's rollback
#: deletes the failing pods before the failure is reported).
DELETED_PODS_KEPT = 50


class DeployWatcher(Protocol):
    """What a deploy needs from its watcher (the service takes a factory, so tests can substitute)."""

    @property
    def fatal(self) -> asyncio.Event: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def fatal_signals(self) -> tuple[Signal, ...]: ...

    def snapshot(self) -> str: ...


WatcherFactory = Callable[[str, str, ProgressSink, Sequence[str]], DeployWatcher]


class ReleaseWatcher:
    """Watches one release while one deploy runs; :meth:`start` before helm, :meth:`stop` after."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        release: str,
        on_progress: ProgressSink,
        *,
        policy: FailFastPolicy | None = None,
        secrets: Iterable[str] = (),
        since: datetime | None = None,
        clock: Callable[[], float] = time.monotonic,
        watch_timeout: int = WATCH_TIMEOUT_SECONDS,
        progress_limit: int = 4000,
        on_latency: LatencyObserver | None = None,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self.namespace = namespace
        self.release = release
        self._on_progress = on_progress
        self._secrets = [s for s in secrets if s]
        if since is None:
            # Event times have whole seconds; one second of slack keeps events of this deploy's first
            # second, and drops those of earlier deploys (a previous failed attempt's warnings).
            since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        self._since = since
        self._signals = SignalSet(policy, since=since, secrets=self._secrets)
        self._clock = clock
        self._watch_timeout = watch_timeout
        self._progress_limit = progress_limit
        self._fatal = asyncio.Event()
        self._wake = asyncio.Event()
        self._synced = {"pods": asyncio.Event(), "events": asyncio.Event()}
        self._tasks: list[asyncio.Task[None]] = []
        # Objects are stored (and classified) redacted: no secret reaches a signal, a line or a log.
        self._pods: dict[str, Mapping[str, Any]] = {}
        self._deleted_pods: dict[str, Mapping[str, Any]] = {}
        self._events: dict[str, Mapping[str, Any]] = {}
        self._last_text = ""
        self._sending = asyncio.Lock()
        self._on_latency = on_latency
        #: Progress texts handed to ``on_progress``, in order (for logs and tests).
        self.sent: list[str] = []

    # -- public --------------------------------------------------------------------------------------

    @property
    def fatal(self) -> asyncio.Event:
        return self._fatal

    async def start(self) -> None:
        """Open both watches and wait (bounded) until their initial lists are in."""
        self._tasks = [
            asyncio.create_task(self._follow("pods"), name=f"watch-pods-{self.release}"),
            asyncio.create_task(self._follow("events"), name=f"watch-events-{self.release}"),
            asyncio.create_task(self._deadlines(), name=f"fail-fast-{self.release}"),
        ]
        try:
            async with asyncio.timeout(SYNC_TIMEOUT_SECONDS):
                await asyncio.gather(*(event.wait() for event in self._synced.values()))
        except TimeoutError:
            log.warning(
                "watches for release %s not synced after %.0f s; deploying without waiting for them",
                self.release,
                SYNC_TIMEOUT_SECONDS,
            )

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A report handed over before the cancellation is complete (the sink only queues).
        async with self._sending:
            pass

    def signals(self) -> tuple[Signal, ...]:
        return self._signals.signals(self._clock())

    def fatal_signals(self) -> tuple[Signal, ...]:
        return self._signals.fatal_signals(self._clock())

    def snapshot(self) -> str:
        """The diagnostics lines for a failure status (unbounded; the status bounds them).

        After a failure helm may already have rolled back and deleted the failing pods: pods deleted
        during the deploy are included with their last state, and when nothing is left at all, the
        last progress text is still the best explanation.
        """
        pods = {**self._deleted_pods, **self._pods}.values()
        return "\n".join(self._lines(pods)) or self._last_text

    def _lines(self, pods: Iterable[Mapping[str, Any]]) -> list[str]:
        # The stored objects are redacted already; fit_lines and the status redact the joined lines.
        return diagnostic_lines(
            pods, self._events.values(), release=self.release, since=self._since, redacted=True
        )

    # -- watches -------------------------------------------------------------------------------------

    async def _follow(self, kind: str) -> None:
        resource_version: str | None = None
        while True:
            try:
                if resource_version is None:
                    resource_version = await self._relist(kind)
                    self._synced[kind].set()
                resource_version = await self._watch(kind, resource_version)
            except ApiException as exc:
                if exc.status == 410:
                    log.debug("%s watch of %s expired (410 Gone); listing again", kind, self.release)
                    resource_version = None
                    continue
                log.warning(
                    "%s watch for release %s failed (HTTP %s %s); retrying",
                    kind,
                    self.release,
                    exc.status,
                    exc.reason,
                )
                await asyncio.sleep(RETRY_DELAY_SECONDS)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning(
                    "%s watch for release %s lost its connection (%s); retrying", kind, self.release, exc
                )
                await asyncio.sleep(RETRY_DELAY_SECONDS)
            except Exception:
                # Anything else (a malformed stream, a library bug) must not silently end live signals
                # and fail-fast for the rest of the deploy: log it and list again.
                log.exception(
                    "%s watch for release %s failed unexpectedly; listing again", kind, self.release
                )
                resource_version = None
                await asyncio.sleep(RETRY_DELAY_SECONDS)

    def _list_call(self, kind: str) -> tuple[Callable[..., Awaitable[Any]], dict[str, Any]]:
        if kind == "pods":
            return self._core.list_namespaced_pod, {"label_selector": f"{HELM_INSTANCE_LABEL}={self.release}"}
        return self._core.list_namespaced_event, {"field_selector": "type=Warning"}

    async def _relist(self, kind: str) -> str:
        func, selector = self._list_call(kind)
        response = await func(
            self.namespace, **selector, _preload_content=False, _request_timeout=SYNC_TIMEOUT_SECONDS
        )
        listing = await response.json()
        received = time.monotonic()
        items = [item for item in listing.get("items") or [] if isinstance(item, dict)]
        now = self._clock()
        if kind == "pods":
            present = {_name(item) for item in items}
            for name in [name for name in self._pods if name not in present]:
                self._forget_pod(name, now)
            for item in items:
                self._observe_pod(item, now)
        else:
            present = {_uid(item) for item in items}
            for uid in [uid for uid in self._events if uid not in present]:
                self._signals.forget_event(self._events.pop(uid), now)
            for item in items:
                self._observe_event(item, now)
        await self._evaluate(received)
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, kind: str, resource_version: str) -> str:
        """Follow one watch until the server ends it; returns the last resourceVersion seen."""
        func, selector = self._list_call(kind)
        stream = watch_stream(
            func,
            self.namespace,
            **selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _request_timeout=self._watch_timeout + 30,
        )
        async with contextlib.aclosing(stream):
            async for kind_of_change, raw in stream:
                received = time.monotonic()
                resource_version = str(get_path(raw, "metadata", "resourceVersion") or resource_version)
                if kind_of_change == "BOOKMARK":
                    continue
                now = self._clock()
                if kind == "pods":
                    if kind_of_change == "DELETED":
                        self._forget_pod(_name(raw), now)
                    else:
                        self._observe_pod(raw, now)
                elif kind_of_change == "DELETED":
                    gone = self._events.pop(_uid(raw), None)
                    if gone is not None:
                        self._signals.forget_event(gone, now)
                else:
                    self._observe_event(raw, now)
                await self._evaluate(received)
        return resource_version

    def _observe_pod(self, pod: Mapping[str, Any], now: float) -> None:
        redacted = redact_api_object(pod, self._secrets)
        name = _name(redacted)
        self._pods[name] = redacted
        self._deleted_pods.pop(name, None)
        self._signals.observe_pod(redacted, now)

    def _forget_pod(self, name: str, now: float) -> None:
        gone = self._pods.pop(name, None)
        if gone is not None:
            self._deleted_pods[name] = gone
            while len(self._deleted_pods) > DELETED_PODS_KEPT:
                self._deleted_pods.pop(next(iter(self._deleted_pods)))
        self._signals.forget_pod(name, now)

    def _observe_event(self, event: Mapping[str, Any], now: float) -> None:
        known_pods = self._pods.keys() | self._deleted_pods.keys()
        if not event_concerns_release(event, self.release, known_pods):
            return
        redacted = redact_api_object(event, self._secrets)
        self._events[_uid(redacted)] = redacted
        self._signals.observe_event(redacted, now)

    # -- reporting and fail-fast ---------------------------------------------------------------------

    async def _evaluate(self, received: float | None = None) -> None:
        """Report the text if it changed; raise the fatal flag; wake the deadline task.

        ``received``: when the watch event (or list) that led here arrived (``time.monotonic``).
        """
        now = self._clock()
        if not self._fatal.is_set() and self._signals.fatal_signals(now):
            self._fatal.set()
        self._wake.set()
        text = fit_lines(self._lines(self._pods.values()), self._progress_limit, self._secrets)
        # An empty set is not reported (as upstream): when helm rolls back, the pods disappear, and
        # "nothing wrong" just before the failure status would mislead.
        if not text or text == self._last_text:
            return
        self._last_text = text
        async with self._sending:
            self.sent.append(text)
            try:
                delivery = await self._on_progress(text)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not queue a progress report for release %s", self.release)
            else:
                if received is not None and self._on_latency is not None and delivery is not None:
                    delivery.add_done_callback(functools.partial(self._observe_latency, received))

    def _observe_latency(self, received: float, delivery: asyncio.Future[bool]) -> None:
        """Watch event received → progress report taken by the controller (not replaced, not refused)."""
        if self._on_latency is not None and not delivery.cancelled() and delivery.result():
            self._on_latency(time.monotonic() - received)

    async def _deadlines(self) -> None:
        """Sleep until a present signal turns fatal by persistence (or anything changes), then re-check.

        A round that fails is logged and retried after a pause, as :meth:`_follow` does: a silent end
        would switch fail-fast by persistence off for the rest of the deploy."""
        while True:
            try:
                await self._deadline_round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("release %s: fail-fast deadline check failed; retrying", self.release)
                await asyncio.sleep(DEADLINE_RETRY_SECONDS)

    async def _deadline_round(self) -> None:
        now = self._clock()
        deadline = self._signals.next_deadline(now)
        timeout = None if deadline is None else max(deadline - now, 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
        if deadline is not None and self._clock() >= deadline:
            await self._evaluate()
            self._wake.clear()


def _name(item: Mapping[str, Any]) -> str:
    return str(get_path(item, "metadata", "name") or "")


def _uid(item: Mapping[str, Any]) -> str:
    metadata = item.get("metadata") or {}
    return str(metadata.get("uid") or f"{metadata.get('namespace')}/{metadata.get('name')}")
