"""One SignalR connection to the operator hub: negotiate, WebSocket, handshake, keep-alive, invocations.

A session never reconnects; :class:`~communication_operator.hub.connection.HubConnection` owns the
reconnect loop and opens a fresh session (with a fresh negotiate and token) for every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

import aiohttp

from communication_operator.hub import protocol
from communication_operator.hub.errors import (
    AuthenticationFailed,
    HandshakeFailed,
    HubError,
    InvocationTimeout,
    MessageNotEncodable,
    MessageTooLarge,
    NotConnected,
)
from communication_operator.hub.negotiate import auth_header, negotiate, websocket_url
from communication_operator.hub.protocol import MessageType
from communication_operator.hub.records import record_excerpt
from communication_operator.redaction import redact_and_bound, redact_url_tokens

log = logging.getLogger(__name__)

HUB_PATH = "operatorHub"

PushHandler = Callable[[str, Any], None]
#: Characters of the controller's close error kept for the reason logged (redacted, then cut).
CLOSE_ERROR_LIMIT = 500
MALFORMED_RECORD = (
    "dropping a malformed record from the controller (%d characters; %s); the connection stays up: %s"
)


def hub_url(base_url: str) -> str:
    """``{CommunicationControllerUri}/operatorHub``, tolerant of a trailing slash or the hub path itself."""
    base = base_url.rstrip("/")
    if base.rsplit("/", 1)[-1].casefold() == HUB_PATH.casefold():
        return base
    return f"{base}/{HUB_PATH}"


@dataclass(frozen=True)
class SessionConfig:
    url: str
    keepalive_interval: float = 15.0
    server_timeout: float = 30.0
    handshake_timeout: float = 15.0
    max_message_bytes: int = 32 * 1024
    ssl_context: ssl.SSLContext | bool = True


@dataclass
class CloseInfo:
    reason: str
    allow_reconnect: bool = True
    registration_failed: bool = False


class HubSession:
    """A connected, handshaken hub connection. Create it with :meth:`open`."""

    def __init__(
        self,
        config: SessionConfig,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        connection_id: str,
        on_push: PushHandler,
        on_malformed: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._on_malformed = on_malformed
        self.connection_id = connection_id
        self._http = http
        self._ws = ws
        self._on_push = on_push
        self._ids = count(1)
        self._pending: dict[str, tuple[str, asyncio.Future[Any]]] = {}
        self._send_lock = asyncio.Lock()
        self._last_sent = time.monotonic()
        self._last_received = time.monotonic()
        self._buffer = ""
        self.closed: asyncio.Future[CloseInfo] = asyncio.get_running_loop().create_future()
        self._tasks: list[asyncio.Task[None]] = []

    # -- opening -------------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        config: SessionConfig,
        on_push: PushHandler,
        token: str | None = None,
        on_malformed: Callable[[], None] | None = None,
    ) -> HubSession:
        """Negotiate (v1, falling back to v0), connect the WebSocket and complete the handshake."""
        # sock_read bounds the negotiate answer and the upgrade response: a controller that accepts TCP
        # but answers nothing must not hold the attempt forever. After the upgrade aiohttp reads the
        # WebSocket without it (ws_receive is None); the server timeout watches the connection then.
        timeout = aiohttp.ClientTimeout(
            total=None, connect=config.handshake_timeout, sock_read=config.handshake_timeout
        )
        http = aiohttp.ClientSession(timeout=timeout)
        try:
            url = hub_url(config.url)
            negotiation = await negotiate(http, url, token, config)
            ws_url = websocket_url(url, negotiation.transport_id, token)
            try:
                ws = await http.ws_connect(
                    ws_url,
                    ssl=config.ssl_context,
                    headers=auth_header(token),
                    autoping=True,
                    heartbeat=None,
                    max_msg_size=0,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (401, 403):
                    raise AuthenticationFailed(f"WebSocket upgrade refused with HTTP {exc.status}") from None
                if exc.status == 404:
                    # The negotiated id is unknown: the controller restarted between negotiate and
                    # connect. Transient; the next attempt negotiates afresh.
                    raise NotConnected("WebSocket upgrade answered 404 (the controller restarted)") from None
                raise HandshakeFailed(f"WebSocket upgrade refused with HTTP {exc.status}") from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = redact_url_tokens(str(exc)) or type(exc).__name__
                raise NotConnected(f"WebSocket connect to the controller failed: {reason}") from None
            session = cls(config, http, ws, negotiation.connection_id, on_push, on_malformed)
            try:
                tail = await session._handshake()
            except BaseException:
                await ws.close()
                raise
            session._start()
            if tail:
                session._handle_text(tail)
            return session
        except BaseException:
            await http.close()
            raise

    async def _handshake(self) -> str:
        await self._ws.send_str(protocol.HANDSHAKE_REQUEST)
        buffer = ""
        deadline = time.monotonic() + self.config.handshake_timeout
        while protocol.RECORD_SEPARATOR not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HandshakeFailed("no handshake response from the controller in time")
            msg = await self._ws.receive(timeout=remaining)
            if msg.type is aiohttp.WSMsgType.TEXT:
                buffer += msg.data
            elif msg.type is aiohttp.WSMsgType.BINARY:
                buffer += msg.data.decode("utf-8", errors="replace")
            else:
                raise HandshakeFailed(f"connection closed during the handshake ({msg.type.name})")
        record, _, rest = buffer.partition(protocol.RECORD_SEPARATOR)
        error = protocol.parse_handshake_response(record)
        if error is not None:
            raise HandshakeFailed(f"handshake refused: {error}")
        self._last_received = time.monotonic()
        return rest

    def _start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"hub-read-{self.connection_id}"),
            asyncio.create_task(self._keepalive_loop(), name=f"hub-keepalive-{self.connection_id}"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A session task that dies ends the session (the connection reconnects) instead of leaving it
        half alive: without the read loop nothing is received, without keep-alive the server drops us."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.error("%s failed: %r; closing the session", task.get_name(), error, exc_info=error)
        self._close(f"{task.get_name()} failed: {type(error).__name__}")

    # -- invocations ---------------------------------------------------------------------------------

    async def invoke(self, method: str, arguments: list[Any], timeout: float) -> Any:
        """Send a blocking invocation and wait for its completion."""
        if self.closed.done():
            raise NotConnected("the connection to the controller is closed")
        invocation_id = str(next(self._ids))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[invocation_id] = (method, future)
        try:
            await self._send(protocol.invocation(invocation_id, method, arguments))
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            raise InvocationTimeout(
                f"{method}: no completion from the controller within {timeout:g} s"
            ) from None
        finally:
            self._pending.pop(invocation_id, None)

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            text = protocol.encode(message)
            size = len(text.encode("utf-8"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise MessageNotEncodable(
                f"{message.get('target', 'message')}: cannot be written as JSON in UTF-8: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        if size > self.config.max_message_bytes:
            raise MessageTooLarge(
                f"{message.get('target', 'message')}: {size} bytes exceeds the controller's limit of "
                f"{self.config.max_message_bytes} bytes"
            )
        async with self._send_lock:
            try:
                await self._ws.send_str(text)
            except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
                self._close(f"send failed: {exc}")
                raise NotConnected(f"sending to the controller failed: {exc}") from None
            self._last_sent = time.monotonic()

    # -- receiving -----------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = "the controller closed the connection"
        try:
            while not self.closed.done():
                msg = await self._ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._handle_text(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    self._handle_text(msg.data.decode("utf-8", errors="replace"))
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    reason = f"WebSocket closed (code {self._ws.close_code})"
                    break
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    reason = f"WebSocket error: {redact_url_tokens(str(msg.data))}"
                    break
        except (ConnectionError, aiohttp.ClientError) as exc:
            reason = f"connection lost: {redact_url_tokens(str(exc))}"
        except Exception as exc:
            # A bug of ours, not the controller closing: say which, so nobody hunts a controller fault.
            log.exception("reading from the controller failed")
            reason = f"reading from the controller failed: {type(exc).__name__}"
        finally:
            self._close(reason)

    def _handle_text(self, data: str) -> None:
        self._last_received = time.monotonic()
        records, self._buffer = protocol.split_records(self._buffer + data)
        for record in records:
            try:
                message = json.loads(record)
            except (ValueError, RecursionError) as exc:
                # ValueError: bad syntax, or an integer over Python's digit limit; RecursionError:
                # nesting deeper than the parser's stack. The excerpt masks values (secrets).
                log.warning(MALFORMED_RECORD, len(record), _parse_error(exc), record_excerpt(record))
                if self._on_malformed is not None:
                    self._on_malformed()
                continue
            if not isinstance(message, dict):
                log.warning("ignoring a record from the controller that is not a JSON object")
                continue
            self._handle_message(message)

    def _handle_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == MessageType.INVOCATION:
            target = message.get("target")
            if not isinstance(target, str):
                log.warning("ignoring an invocation without a target from the controller")
                return
            if message.get("invocationId") is not None:
                # Client results are not part of this contract; answer so the server does not wait.
                task = asyncio.create_task(
                    self._send_completion_error(
                        str(message["invocationId"]), "Client didn't provide a result."
                    )
                )
                self._tasks.append(task)
            self._on_push(target, message.get("arguments", []))
        elif kind == MessageType.COMPLETION:
            self._complete(message)
        elif kind == MessageType.CLOSE:
            error = message.get("error")
            allow = bool(message.get("allowReconnect", False))
            reason = f": {redact_and_bound(str(error), CLOSE_ERROR_LIMIT, keep_end=False)}" if error else ""
            self._close(f"the controller closed the connection{reason}", allow)
        elif kind == MessageType.PING:
            pass
        else:
            log.debug("ignoring hub message of type %r", kind)

    def _complete(self, message: dict[str, Any]) -> None:
        invocation_id = str(message.get("invocationId"))
        entry = self._pending.get(invocation_id)
        if entry is None:
            log.debug("completion for unknown invocation %s ignored", invocation_id)
            return
        method, future = entry
        if future.done():
            return
        if message.get("error") is not None:
            future.set_exception(HubError(method, str(message["error"])))
        else:
            future.set_result(message.get("result"))

    async def _send_completion_error(self, invocation_id: str, error: str) -> None:
        with contextlib.suppress(NotConnected, MessageTooLarge, MessageNotEncodable):
            await self._send({"type": MessageType.COMPLETION, "invocationId": invocation_id, "error": error})

    async def _keepalive_loop(self) -> None:
        tick = min(self.config.keepalive_interval, self.config.server_timeout) / 4
        while not self.closed.done():
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - self._last_received > self.config.server_timeout:
                self._close(
                    f"no message from the controller for {self.config.server_timeout:g} s (server timeout)"
                )
                return
            if now - self._last_sent >= self.config.keepalive_interval:
                with contextlib.suppress(NotConnected):
                    async with self._send_lock:
                        try:
                            await self._ws.send_str(protocol.PING_RECORD)
                        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
                            self._close(f"ping failed: {exc}")
                            return
                        self._last_sent = time.monotonic()

    # -- closing -------------------------------------------------------------------------------------

    def _close(self, reason: str, allow_reconnect: bool = True) -> None:
        if self.closed.done():
            return
        self.closed.set_result(CloseInfo(reason, allow_reconnect))
        for method, future in self._pending.values():
            if not future.done():
                future.set_exception(
                    NotConnected(f"{method}: connection lost before the controller answered")
                )

    async def close(self) -> None:
        """Close the WebSocket and stop the session's tasks."""
        self._close("closed by the operator")
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), timeout=2.0)
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._http.close()


def _parse_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to parse"
    return f"{type(exc).__name__}: {str(exc)[:150]}"
