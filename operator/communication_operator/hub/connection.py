"""The operator's one connection to the controller: a supervisor task that never gives up.

It opens a fresh :class:`HubSession` per attempt (fresh negotiate, fresh token), runs the
``on_connected`` hooks before any other traffic, hands the controller's pushes to the dispatcher
(:mod:`.dispatch`, one at a time) and queued reports to the outbox task (:mod:`.delivery`, in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from communication_operator.contracts import (
    ClientMethod,
    ServerMethod,
    check_arity,
    decode_result,
    encode_arguments,
)
from communication_operator.contracts.profiles import ContractSelector
from communication_operator.hub.auth import TokenError
from communication_operator.hub.backoff import Backoff
from communication_operator.hub.delivery import ReportDelivery
from communication_operator.hub.dispatch import HubStats, PushCallback, PushDispatcher, RefusalCallback
from communication_operator.hub.errors import (
    AuthenticationFailed,
    HubConnectionError,
    HubError,
    InvocationTimeout,
    MessageNotEncodable,
    MessageTooLarge,
    NotConnected,
)
from communication_operator.hub.generations import invoke_in_contract, push_in_cp_names
from communication_operator.hub.session import CloseInfo, HubSession, SessionConfig
from communication_operator.hub.throttle import AuthRefusalLog
from communication_operator.metrics import InvocationOutcome, OperatorMetrics
from communication_operator.redaction import redact_url_tokens
from communication_operator.supervision import TaskSupervisor

log = logging.getLogger(__name__)

ConnectedHook = Callable[[], Awaitable[None]]

# True inside an on_connected hook: the hook's own invocations may run before the connection is "ready".
_in_connected_hook: contextvars.ContextVar[bool] = contextvars.ContextVar("in_connected_hook", default=False)


class TokenProvider(Protocol):
    async def get_token(self) -> str | None: ...  # None: connect without a token (the provider warns)


@dataclass(frozen=True)
class HubOptions:
    url: str
    keepalive_interval: float = 15.0
    server_timeout: float = 30.0
    handshake_timeout: float = 15.0
    invoke_timeout: float = 30.0
    verify_tls: bool = True
    ca_file: str | None = None
    max_message_bytes: int = 32 * 1024
    outbox_limit: int = 10_000
    # Unreachable controller: probing is cheap (a refused TCP connect), and the operator must be back
    # within ~2 s of the controller's return, so the delay stays short.
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.1, maximum=1.5))
    # Reachable but refusing (auth, handshake, registration failing): waiting longer spares the controller.
    refused_backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=30.0))
    healthy_after: float = 30.0  # a connection that lasted this long resets the backoff
    auth_refusal_log_interval: float = 60.0  # at most one WARNING per interval while refused

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.url.startswith(("https:", "wss:")):
            return True
        if not self.verify_tls:
            return False
        return ssl.create_default_context(cafile=self.ca_file)


class HubConnection:
    def __init__(
        self,
        options: HubOptions,
        token_provider: TokenProvider | None = None,
        metrics: OperatorMetrics | None = None,
        supervisor: TaskSupervisor | None = None,
    ) -> None:
        self.options = options
        self._metrics = metrics
        self.supervisor = supervisor or TaskSupervisor(metrics)
        self._token_provider = token_provider
        self._hooks: list[ConnectedHook] = []
        self._session: HubSession | None = None
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._auth_refusals = AuthRefusalLog(log, options.auth_refusal_log_interval)
        self.stats = HubStats()
        self._pushes = PushDispatcher(self.stats, metrics)
        self._reports = ReportDelivery(
            self.invoke,
            self._ready,
            lambda: self._session.closed if self._session is not None else None,
            self.stats,
            metrics,
            outbox_limit=options.outbox_limit,
            max_message_bytes=options.max_message_bytes,
        )
        self.connection_id: str | None = None
        self.state_listeners: list[Callable[[bool], None]] = []
        # Which controller generation this connection speaks (OPERATOR__CONTRACT; runtime/hub.py sets it).
        self.contract = ContractSelector("auto")

    # -- public API ----------------------------------------------------------------------------------

    def on(
        self, method: ClientMethod | str, handler: PushCallback, on_invalid: RefusalCallback | None = None
    ) -> None:
        """Handle a controller push; ``handler`` receives the arguments validated into DTOs.

        ``on_invalid`` receives a workload push that fails validation (with the ids it could read);
        without one, such a push is logged and dropped.
        """
        self._pushes.on(method, handler, on_invalid)

    def on_connected(self, hook: ConnectedHook) -> None:
        """Run ``hook`` after every (re)connect, before reports and pushes; if it raises, reconnect."""
        self._hooks.append(hook)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    @property
    def outbox_depth(self) -> int:
        return len(self._reports)

    async def wait_connected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    async def invoke(self, method: ServerMethod, *args: Any, timeout: float | None = None) -> Any:
        """Call a hub method and return its validated result.

        Raises :class:`HubError` when the controller answers with an error and :class:`NotConnected`
        while the connection is down (or drops before the answer).
        """
        session = self._session
        if session is None or not (self._ready.is_set() or _in_connected_hook.get()):
            raise NotConnected(f"{method}: not connected to the controller")
        arguments = encode_arguments(str(method), *args)
        outcome = InvocationOutcome.OK
        try:
            result = await invoke_in_contract(
                self.contract, session, str(method), arguments, timeout or self.options.invoke_timeout
            )
        except HubError:
            outcome = InvocationOutcome.ERROR
            raise
        except InvocationTimeout:
            outcome = InvocationOutcome.TIMEOUT
            raise
        except (MessageTooLarge, MessageNotEncodable):
            outcome = InvocationOutcome.UNSENT
            raise
        except HubConnectionError:
            outcome = InvocationOutcome.DISCONNECTED
            raise
        finally:
            if self._metrics is not None:
                self._metrics.record_invocation(str(method), outcome)
        return decode_result(str(method), result)

    async def report(self, method: ServerMethod, *args: Any) -> asyncio.Future[bool]:
        """Queue a report for in-order delivery; it survives disconnects and controller restarts.

        Returns once queued. The returned future (callers may ignore it) settles when the report
        leaves the outbox: True when the controller took it, False when it refused it or a newer
        progress report of the same workload replaced it.
        """
        # A wrong arity is a bug of the caller: fail now. A value that cannot be encoded fails at
        # delivery, where it is dropped with a log line and a metric, without stopping later reports.
        check_arity(str(method), args)
        return self._reports.queue(method, args)

    async def start(self) -> None:
        if self._tasks:
            return
        self._stopping = False
        self._tasks = [
            self.supervisor.spawn(self._supervise(), "hub-supervisor"),
            self.supervisor.spawn(self._reports.run(), "hub-outbox"),
            self.supervisor.spawn(self._pushes.run(self._ready), "hub-dispatch"),
        ]

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``drain_timeout`` seconds), then close the connection."""
        if not self._tasks:
            return
        if len(self._reports):
            # Also while reconnecting: the controller may be back within the drain time.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    await self._reports.wait_empty()
        if len(self._reports):
            log.warning(
                "stopping with %d undelivered report(s); the controller was not reachable", len(self._reports)
            )
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._drop_session()

    # -- the supervisor ------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        down_since: float | None = time.monotonic()
        first_failure_logged = False
        while not self._stopping:
            try:
                session = await self._open_session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                url = redact_url_tokens(self.options.url)
                if isinstance(exc, AuthenticationFailed | TokenError):
                    self._auth_refusals.refused(url, _describe(exc))
                else:
                    level = logging.DEBUG if first_failure_logged else logging.WARNING
                    log.log(level, "cannot connect to the controller at %s: %s", url, _describe(exc))
                first_failure_logged = True
                backoff = (
                    self.options.backoff if isinstance(exc, NotConnected) else self.options.refused_backoff
                )
                await asyncio.sleep(backoff.delay(attempt))
                attempt += 1
                continue
            connected_at = time.monotonic()
            try:
                close = await self._run_session(session, down_since, attempt)
            except Exception as exc:
                # Without this loop nothing ever reconnects; a bug in one session's teardown ends
                # that session, not the operator's connection for good.
                log.exception("the connection to the controller failed unexpectedly")
                close = CloseInfo(f"unexpected failure: {_describe(exc)}")
            if time.monotonic() - connected_at >= self.options.healthy_after:
                attempt = 0
            down_since = time.monotonic()
            first_failure_logged = True
            if not self._stopping:
                log.warning("lost the connection to the controller: %s; reconnecting", close.reason)
                backoff = self.options.refused_backoff if close.registration_failed else self.options.backoff
                await asyncio.sleep(backoff.delay(attempt))
                attempt += 1

    async def _open_session(self) -> HubSession:
        token = await self._token_provider.get_token() if self._token_provider else None
        config = SessionConfig(
            url=self.options.url,
            keepalive_interval=self.options.keepalive_interval,
            server_timeout=self.options.server_timeout,
            handshake_timeout=self.options.handshake_timeout,
            max_message_bytes=self.options.max_message_bytes,
            ssl_context=self.options.ssl_context(),
        )
        on_malformed = self._metrics.record_malformed_record if self._metrics is not None else None
        return await HubSession.open(config, self._enqueue_push, token, on_malformed)

    async def _run_session(self, session: HubSession, down_since: float | None, attempts: int) -> CloseInfo:
        self._session = session
        self.connection_id = session.connection_id
        try:
            try:
                await self._run_connected_hooks()
            except Exception as exc:
                log.warning("registration after connecting failed, reconnecting: %s", _describe(exc))
                return CloseInfo(f"registration failed: {_describe(exc)}", registration_failed=True)
            self.stats.connects += 1
            outage = f" after {time.monotonic() - down_since:.1f} s" if down_since and attempts else ""
            log.info("connected to the controller (connection %s)%s", session.connection_id, outage)
            self._set_ready(True)
            return await session.closed
        finally:
            self._set_ready(False)
            self.stats.disconnects += 1
            await self._drop_session()

    async def _run_connected_hooks(self) -> None:
        token = _in_connected_hook.set(True)
        self.contract.connection_opened()  # a controller can be upgraded between two connections
        try:
            for hook in self._hooks:
                await hook()
        finally:
            _in_connected_hook.reset(token)

    def _set_ready(self, ready: bool) -> None:
        if ready == self._ready.is_set():
            return
        if self._metrics is not None:
            self._metrics.set_hub_connected(ready)
            if ready and self.stats.connects > 1:
                self._metrics.record_reconnect()
        if ready:
            self._ready.set()
            self._reports.wake()
        else:
            self._ready.clear()
        for listener in self.state_listeners:
            # A listener's bug must not end the supervisor (no reconnects ever after) or skip the
            # session teardown that follows this call.
            try:
                listener(ready)
            except Exception:
                log.exception("connection state listener %r failed", listener)

    async def _drop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- pushes --------------------------------------------------------------------------------------

    def _enqueue_push(self, target: str, arguments: Any) -> None:
        """Either generation's push, in pool-era names (contracts/profiles.py), to the dispatcher."""
        self._pushes.enqueue(*push_in_cp_names(self.contract, target, arguments))


def _describe(exc: BaseException) -> str:
    return redact_url_tokens(str(exc)) or type(exc).__name__
