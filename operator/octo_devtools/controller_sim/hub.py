"""The ``/operatorHub`` endpoint: negotiate, WebSocket transport, handshake, dispatch, keep-alive, faults.

Behaviour follows ASP.NET Core SignalR (HttpConnectionDispatcher, HubConnectionHandler,
HubConnectionContext, DefaultHubDispatcher). Connection tokens and bearer tokens are secrets: they are
never logged (the aiohttp access log, which prints query strings, must stay off).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from communication_operator.contracts import SERVER_METHODS, ContractError, ServerMethod, decode_arguments
from octo_devtools.controller_sim import protocol
from octo_devtools.controller_sim.generations import SimulatedGeneration
from octo_devtools.controller_sim.options import SimulatorOptions
from octo_devtools.controller_sim.state import ControllerState, HubError, Push
from octo_devtools.controller_sim.views import redact

logger = logging.getLogger(__name__)

HUB_PATH = "/operatorHub"


def _new_id() -> str:
    # ASP.NET uses 16 random bytes, base64url-encoded (22 characters).
    return secrets.token_urlsafe(16)


@dataclass
class _Negotiated:
    connection_id: str
    expires_at: float


@dataclass(frozen=True)
class _CloseRequest:
    message: str | None  # the SignalR Close record to send first, if any


class HubConnection:
    """One open WebSocket after a successful handshake. All writes go through one queue, in order."""

    def __init__(self, hub: OperatorHub, connection_id: str, ws: web.WebSocketResponse, request: web.Request):
        self.connection_id = connection_id
        self._hub = hub
        self._ws = ws
        self._transport = request.transport
        self.handler = asyncio.current_task()
        self._outgoing: asyncio.Queue[str | _CloseRequest] = asyncio.Queue()
        self.closing = False
        self.aborted = False
        now = time.monotonic()
        self.last_received = now
        self.last_sent = now

    def send(self, record: str) -> None:
        if not self.closing:
            self._outgoing.put_nowait(record)

    def close(self, close_record: str | None) -> None:
        """Send ``close_record`` (a Close message) after everything already queued, then close the socket."""
        if not self.closing:
            self.closing = True
            self._outgoing.put_nowait(_CloseRequest(close_record))

    def abort(self) -> None:
        """Drop the TCP connection without any Close message (a network failure or a killed process)."""
        self.closing = True
        self.aborted = True
        if self._transport is not None:
            self._transport.abort()

    async def write_loop(self) -> None:
        try:
            while True:
                item = await self._outgoing.get()
                await self._hub.thawed.wait()
                if isinstance(item, _CloseRequest):
                    if item.message is not None:
                        await self._ws.send_str(item.message)
                    await self._ws.close()
                    return
                await self._ws.send_str(item)
                self.last_sent = time.monotonic()
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("connection %s: write failed: %s", self.connection_id, exc)

    async def keep_alive_loop(self) -> None:
        options = self._hub.options
        tick = max(0.02, min(1.0, options.ping_interval / 4, options.client_timeout / 4))
        while not self.closing:
            await asyncio.sleep(tick)
            if not self._hub.thawed.is_set():
                continue  # a frozen server neither pings nor notices silence
            now = time.monotonic()
            if now - self.last_received > options.client_timeout:
                logger.info(
                    "connection %s: no message for %.1fs, closing (client timeout)",
                    self.connection_id,
                    options.client_timeout,
                )
                self.close(
                    protocol.close_message(allow_reconnect=True)
                )  # HubConnectionContext.AbortAllowReconnect
                return
            if now - self.last_sent >= options.ping_interval and self._outgoing.empty():
                self.last_sent = now
                self.send(protocol.PING)


class OperatorHub:
    def __init__(
        self, options: SimulatorOptions, state: ControllerState, on_state_change: Callable[[], None]
    ) -> None:
        self.options = options
        self.state = state
        self._on_state_change = on_state_change
        self.calls: list[dict[str, Any]] = []
        self.completions: list[dict[str, Any]] = []
        self.thawed = asyncio.Event()
        self.thawed.set()
        self.auth_rejected = False
        self._negotiated: dict[str, _Negotiated] = {}  # keyed by the `id` the WebSocket will present
        self._ids_in_use: set[str] = set()
        self._connections: dict[str, HubConnection] = {}
        # Pool-era or DeploymentSite-era wire names (--contract; POST /admin/contract switches it).
        self.generation = SimulatedGeneration(options.contract)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{HUB_PATH}/negotiate", self.negotiate),
            web.get(HUB_PATH, self.websocket),
        ]

    # --- HTTP -----------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        if self.auth_rejected:
            return False
        expected = self.options.token
        if expected is None:
            return True
        header = request.headers.get("Authorization", "")
        query = request.query.get("access_token", "")
        return hmac.compare_digest(header, f"Bearer {expected}") or hmac.compare_digest(query, expected)

    @staticmethod
    def _unauthorized() -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})

    def _forget_expired_negotiations(self) -> None:
        now = time.monotonic()
        for key in [k for k, v in self._negotiated.items() if v.expires_at <= now]:
            del self._negotiated[key]

    async def negotiate(self, request: web.Request) -> web.Response:
        await self.thawed.wait()  # a frozen controller answers nothing
        if not self._authorized(request):
            logger.info("negotiate refused: missing or wrong bearer token")
            return self._unauthorized()
        raw_version = request.query.get("negotiateVersion")
        if raw_version is None:
            version = 0
        else:
            try:
                version = int(raw_version)
            except ValueError:
                return web.json_response(
                    {"error": f"The client requested an invalid protocol version '{raw_version}'"}
                )
        version = min(max(version, 0), self.options.max_negotiate_version)
        self._forget_expired_negotiations()
        connection_id = _new_id()
        body: dict[str, Any] = {"connectionId": connection_id}
        if version >= 1:
            token = _new_id()
            body = {"negotiateVersion": 1, "connectionId": connection_id, "connectionToken": token}
        else:
            token = connection_id  # v0: the public id doubles as the transport id
        body["availableTransports"] = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
        self._negotiated[token] = _Negotiated(
            connection_id, time.monotonic() + self.options.negotiate_timeout
        )
        logger.info("negotiated connection %s (negotiate v%d)", connection_id, version)
        return web.json_response(body)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        await self.thawed.wait()
        if not self._authorized(request):
            logger.info("WebSocket refused: missing or wrong bearer token")
            return self._unauthorized()
        transport_id = request.query.get("id")
        self._forget_expired_negotiations()
        if transport_id is None:
            connection_id = _new_id()  # skip-negotiation client
        elif transport_id in self._ids_in_use:
            return web.Response(status=409, text="Another WebSocket is already using this connection id.")
        elif transport_id in self._negotiated:
            connection_id = self._negotiated.pop(transport_id).connection_id
        else:
            return web.Response(status=404, text="No Connection with that ID")
        # No permessage-deflate (off in ASP.NET Core); size limits are applied per record, not per frame.
        ws = web.WebSocketResponse(max_msg_size=0, autoping=False, compress=False, timeout=2.0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Only the WebSockets transport is supported.")
        if transport_id is not None:
            self._ids_in_use.add(transport_id)
        try:
            await ws.prepare(request)
            await self._serve(connection_id, ws, request)
        finally:
            if transport_id is not None:
                self._ids_in_use.discard(transport_id)
        return ws

    # --- one WebSocket --------------------------------------------------------------------------

    async def _receive_text(self, ws: web.WebSocketResponse) -> str | None:
        """Next data frame as text, answering WebSocket pings (only while thawed); None once closed."""
        while True:
            msg = await ws.receive()
            await self.thawed.wait()
            if msg.type == WSMsgType.TEXT:
                return str(msg.data)
            if msg.type == WSMsgType.BINARY:
                return bytes(msg.data).decode("utf-8", errors="replace")
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
                continue
            if msg.type == WSMsgType.PONG:
                continue
            return None

    async def _handshake(self, ws: web.WebSocketResponse, reader: protocol.RecordReader) -> list[str] | None:
        """Run the handshake; returns records that followed it in the same frame, or None on failure."""
        try:
            async with asyncio.timeout(self.options.handshake_timeout):
                records: list[str] = []
                while not records:
                    text = await self._receive_text(ws)
                    if text is None:
                        return None
                    records = reader.feed(text)
            request = protocol.parse_handshake(records[0])
            protocol.check_handshake(request, legacy_version_check=self.options.legacy_version_check)
        except TimeoutError:
            error = protocol.HANDSHAKE_CANCELED
        except protocol.ProtocolError as exc:
            error = protocol.build_error_message(
                "An unexpected error occurred during connection handshake.",
                "InvalidDataException",
                str(exc),
                include_details=self.options.detailed_errors,
            )
        except protocol.HandshakeError as exc:
            error = str(exc)
        else:
            await ws.send_str(protocol.handshake_response())
            return records[1:]
        logger.info("handshake failed: %s", error)
        await ws.send_str(protocol.handshake_response(error))
        await ws.close()
        return None

    async def _serve(self, connection_id: str, ws: web.WebSocketResponse, request: web.Request) -> None:
        reader = protocol.RecordReader(self.options.max_message_size)
        leftover = await self._handshake(ws, reader)
        if leftover is None:
            return
        connection = HubConnection(self, connection_id, ws, request)
        self._connections[connection_id] = connection
        self.state.connect(connection_id)
        logger.info("connection %s opened", connection_id)
        writer = asyncio.create_task(connection.write_loop())
        keep_alive = asyncio.create_task(connection.keep_alive_loop())
        try:
            records = leftover
            while True:
                for record in records:
                    self._handle_record(connection, record)
                if connection.closing:
                    break
                text = await self._receive_text(ws)
                if text is None:
                    break
                connection.last_received = time.monotonic()
                records = reader.feed(text)
        except protocol.ProtocolError as exc:
            logger.info("connection %s: protocol error, closing: %s", connection_id, exc)
            error = protocol.build_error_message(
                protocol.CLOSED_WITH_ERROR,
                "InvalidDataException",
                str(exc),
                include_details=self.options.detailed_errors,
            )
            connection.close(protocol.close_message(error=error))
        finally:
            keep_alive.cancel()
            if connection.closing and not connection.aborted and not ws.closed:
                # Let the writer flush the Close message; the client then closes its side.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(writer), timeout=2.0)
            writer.cancel()
            if self._connections.get(connection_id) is connection:
                del self._connections[connection_id]
                self.state.disconnect(connection_id)
                self._on_state_change()
            logger.info("connection %s closed", connection_id)

    def _handle_record(self, connection: HubConnection, record: str) -> None:
        message = protocol.parse_message(record)
        if isinstance(message, protocol.OtherMessage):
            if message.type == protocol.MessageType.COMPLETION:
                # A client result (the answer to an invocation with an id sent as a raw frame).
                self.completions.append(
                    {
                        "connectionId": connection.connection_id,
                        "invocationId": message.invocation_id,
                        "error": message.error,
                        "time": time.time(),
                    }
                )
            if message.type == protocol.MessageType.CLOSE:
                connection.close(None)  # the client is leaving; DefaultHubDispatcher aborts the connection
            return  # Ping (already counted as traffic), client results, acks: nothing to do
        if connection.closing:
            return
        error, result = self._invoke(connection.connection_id, message)
        self.deliver(self.state.take_pushes())  # pushes sent inside the hub method precede its completion
        self._on_state_change()
        if message.invocation_id is None:
            return  # non-blocking invocation: the caller must not get an answer
        if error is None:
            connection.send(protocol.completion_result(message.invocation_id, result))
        else:
            connection.send(protocol.completion_error(message.invocation_id, error))

    def _invoke(self, connection_id: str, message: protocol.Invocation) -> tuple[str | None, Any]:
        """Bind and run one invocation; returns (error text or None, result)."""
        target = message.target
        detailed = self.options.detailed_errors
        call: dict[str, Any] = {
            "connectionId": connection_id,
            "invocationId": message.invocation_id,
            "method": target,
            "arguments": redact(message.arguments),
            "time": time.time(),
            "error": None,
        }
        self.calls.append(call)
        wire_target = target
        target, wire_arguments = self.generation.incoming(target, message.arguments)
        message = dataclasses.replace(message, arguments=wire_arguments)
        method = next((m for m in ServerMethod if m.casefold() == target.casefold()), None)
        if method in self.options.missing_methods or not self.generation.serves(wire_target):
            method = None  # an older controller build, or a name of the other generation
        target = wire_target  # error texts name the method as the caller spelled it
        error: str | None = None
        result: Any = None
        if method is None:
            # JsonHubProtocol asks the dispatcher for the parameter types, which throws for unknown names.
            error = protocol.binding_error(
                target, "HubException", "Method does not exist.", detailed_errors=detailed
            )
        elif message.streaming:
            call["method"] = str(method)
            error = protocol.streaming_mismatch_error(target)
        else:
            call["method"] = str(method)
            arity = SERVER_METHODS[method].arity
            if len(message.arguments) != arity:
                detail = (
                    f"Invocation provides {len(message.arguments)} argument(s) but target expects {arity}."
                )
                error = protocol.binding_error(
                    target, "InvalidDataException", detail, detailed_errors=detailed
                )
            else:
                try:
                    arguments = decode_arguments(method, message.arguments, SERVER_METHODS)
                except ContractError as exc:
                    error = protocol.binding_error(
                        target, "JsonException", str(exc), detailed_errors=detailed
                    )
                else:
                    error, result = self._run(connection_id, method, target, arguments)
        call["error"] = error
        result = self.generation.result(result)
        logger.info(
            "connection %s invoked %s: %s", connection_id, call["method"], "ok" if error is None else error
        )
        return error, result

    def _run(
        self, connection_id: str, method: ServerMethod, target: str, arguments: list[Any]
    ) -> tuple[str | None, Any]:
        detailed = self.options.detailed_errors
        try:
            return None, self.state.invoke(connection_id, method, arguments)
        except HubError as exc:
            return protocol.invocation_error(target, "HubException", str(exc), detailed_errors=detailed), None
        except Exception as exc:
            logger.exception("hub method %s failed", method)
            return protocol.invocation_error(
                target, type(exc).__name__, str(exc), detailed_errors=detailed
            ), None

    # --- pushes and faults ----------------------------------------------------------------------

    def deliver(self, pushes: list[Push]) -> None:
        for push in pushes:
            record = protocol.invocation(*self.generation.push(push.target, push.arguments))
            for connection_id in push.connection_ids:
                connection = self._connections.get(connection_id)
                if connection is not None:
                    logger.info("push %s to connection %s", push.target, connection_id)
                    connection.send(record)

    def send_raw(self, records: list[str]) -> int:
        """Send ``records`` as they are (one frame) to every connection; returns how many got them."""
        return self.send_text("".join(record + protocol.RECORD_SEPARATOR for record in records))

    def send_text(self, text: str) -> int:
        """Send ``text`` verbatim as one Text frame to every open connection (a scripted, possibly
        malformed controller); returns how many connections got it. The text is never logged."""
        connections = [c for c in self._connections.values() if not c.closing]
        for connection in connections:
            connection.send(text)
        logger.info("raw frame of %d characters to %d connection(s)", len(text), len(connections))
        return len(connections)

    @property
    def connection_ids(self) -> list[str]:
        return list(self._connections)

    def drop_all(self) -> None:
        for connection in list(self._connections.values()):
            connection.abort()

    def close_all(self, *, error: str | None = None, allow_reconnect: bool = False) -> None:
        for connection in list(self._connections.values()):
            connection.close(protocol.close_message(error=error, allow_reconnect=allow_reconnect))

    def freeze(self) -> None:
        self.thawed.clear()

    def thaw(self) -> None:
        now = time.monotonic()
        for connection in self._connections.values():
            connection.last_received = now  # the silence was ours, not the client's
            connection.last_sent = now
        self.thawed.set()

    def restart(self) -> None:
        """Like a controller pod restart: every connection and negotiation is gone at once."""
        self.thawed.set()
        self._negotiated.clear()
        for connection in list(self._connections.values()):
            connection.abort()
        self._connections.clear()
        self.state.restart()

    def handler_tasks(self) -> list[asyncio.Task[Any]]:
        return [c.handler for c in self._connections.values() if c.handler is not None]

    @staticmethod
    async def wait_finished(handlers: list[asyncio.Task[Any]], timeout: float) -> None:
        """Wait until these WebSocket handlers have finished (after closing or dropping their sockets)."""
        pending = [t for t in handlers if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
