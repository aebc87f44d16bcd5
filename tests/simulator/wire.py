"""A deliberately raw SignalR client (aiohttp WebSocket + hand-written JSON records) for wire-level tests.

It adds nothing on top of the protocol, so tests see exactly what the simulator sends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from types import TracebackType
from typing import Any

import aiohttp

RS = "\x1e"


def records(text: str) -> list[dict[str, Any]]:
    assert text.endswith(RS), f"frame does not end with the record separator: {text!r}"
    return [json.loads(part) for part in text.split(RS)[:-1]]


class RawHubClient:
    def __init__(
        self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, connection_id: str
    ):
        self.session = session
        self.ws = ws
        self.connection_id = connection_id
        self._ids = itertools.count(1)
        self._buffer: list[dict[str, Any]] = []

    @classmethod
    async def connect(
        cls,
        hub_url: str,
        *,
        token: str | None = None,
        handshake: str = '{"protocol":"json","version":1}' + RS,
    ) -> RawHubClient:
        """Negotiate (v1), open the WebSocket with the token, send ``handshake`` and expect ``{}``."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        session = aiohttp.ClientSession(headers=headers)
        try:
            async with session.post(hub_url + "/negotiate?negotiateVersion=1") as response:
                assert response.status == 200, (
                    f"negotiate answered {response.status}: {await response.text()}"
                )
                negotiated = await response.json()
            ws = await session.ws_connect(f"{hub_url}?id={negotiated['connectionToken']}")
            await ws.send_str(handshake)
            reply = await ws.receive(timeout=5)
            assert reply.type == aiohttp.WSMsgType.TEXT, reply
            assert reply.data == "{}" + RS, reply.data
        except BaseException:
            await session.close()
            raise
        return cls(session, ws, negotiated["connectionId"])

    async def __aenter__(self) -> RawHubClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()

    async def send(self, *messages: dict[str, Any]) -> None:
        """Send the messages as records of one frame."""
        await self.ws.send_str("".join(json.dumps(m) + RS for m in messages))

    async def next_message(self, timeout: float = 5.0, *, skip_pings: bool = True) -> dict[str, Any]:
        """The next hub message; raises ConnectionError carrying the WebSocket close when the socket ends."""
        async with asyncio.timeout(timeout):
            while True:
                while self._buffer:
                    message = self._buffer.pop(0)
                    if not (skip_pings and message.get("type") == 6):
                        return message
                frame = await self.ws.receive()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket ended: {frame.type.name} {frame.data!r} {frame.extra!r}")
                self._buffer.extend(records(frame.data))

    async def invoke(self, target: str, *arguments: Any, timeout: float = 5.0) -> dict[str, Any]:
        """Blocking invocation; returns its Completion (pushes received meanwhile stay buffered)."""
        invocation_id = str(next(self._ids))
        await self.send(
            {"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(arguments)}
        )
        skipped: list[dict[str, Any]] = []
        try:
            while True:
                message = await self.next_message(timeout)
                if message.get("type") == 3 and message.get("invocationId") == invocation_id:
                    return message
                skipped.append(message)
        finally:
            self._buffer[:0] = skipped

    async def push(self, target: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next server push (Invocation without invocationId) to ``target``, skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.next_message(timeout)
                if message.get("type") == 1 and message.get("target") == target:
                    assert "invocationId" not in message, message
                    return message

    async def no_message(self, within: float) -> None:
        """Assert that nothing but Pings arrives for ``within`` seconds."""
        try:
            message = await self.next_message(within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message: {message}")
