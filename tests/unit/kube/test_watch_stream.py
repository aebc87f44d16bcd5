"""The watch reader over a real HTTP stream (aiohttp test server): events in order, ERROR as ApiException."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.kube.watch_stream import watch_stream


@pytest.fixture
async def stream_of() -> AsyncIterator[Any]:
    servers: list[TestServer] = []
    session = aiohttp.ClientSession()
    seen: list[dict[str, str]] = []

    async def make(lines: list[bytes]) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            seen.append(dict(request.query))
            response = web.StreamResponse()
            await response.prepare(request)
            for line in lines:
                await response.write(line)
            return response

        app = web.Application()
        app.router.add_get("/pods", handler)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)

        async def list_call(namespace: str, **kwargs: Any) -> aiohttp.ClientResponse:
            assert kwargs.pop("_preload_content") is False
            query = {key: str(value) for key, value in kwargs.items()}
            return await session.get(server.make_url("/pods"), params={"ns": namespace, **query})

        return list_call

    yield make, seen
    await session.close()
    for server in servers:
        await server.close()


async def _collect(stream: AsyncIterator[tuple[str, dict[str, Any]]], into: list[Any]) -> None:
    async for event in stream:
        into.append(event)


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


async def test_events_arrive_in_order_and_the_request_is_a_watch(stream_of: Any) -> None:
    make, seen = stream_of
    pod = {"metadata": {"name": "p", "resourceVersion": "7"}}
    list_call = await make([_line("ADDED", pod), _line("BOOKMARK", {"metadata": {"resourceVersion": "9"}})])

    events = [event async for event in watch_stream(list_call, "ns1", resource_version="5")]

    assert events == [("ADDED", pod), ("BOOKMARK", {"metadata": {"resourceVersion": "9"}})]
    assert seen == [{"ns": "ns1", "watch": "True", "resource_version": "5"}]


async def test_an_error_event_is_the_api_exception_it_describes(stream_of: Any) -> None:
    make, _ = stream_of
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 5 (9)"}
    list_call = await make([_line("ADDED", {"metadata": {"name": "p"}}), _line("ERROR", gone)])

    received: list[tuple[str, dict[str, Any]]] = []
    with pytest.raises(ApiException) as raised:
        await _collect(watch_stream(list_call, "ns1"), received)

    assert raised.value.status == 410
    assert raised.value.reason == "Expired: too old resource version: 5 (9)"
    assert received == [("ADDED", {"metadata": {"name": "p"}})]


async def test_a_malformed_line_is_an_error_naming_it(stream_of: Any) -> None:
    make, _ = stream_of
    list_call = await make([b'{"type": "ADDED"}\n'])

    with pytest.raises(ValueError, match="malformed watch event"):
        await _collect(watch_stream(list_call, "ns1"), [])


async def test_no_client_is_built_per_watch(stream_of: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reason this module exists: kubernetes-asyncio's Watch builds an ApiClient (a CA load) per watch."""
    built: list[object] = []
    original = client.ApiClient.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(client.ApiClient, "__init__", counting_init)
    make, _ = stream_of
    list_call = await make([_line("ADDED", {"metadata": {"name": "p"}})])

    assert [event async for event in watch_stream(list_call, "ns1")]
    assert built == []
