"""The API forwarder pods of the real node use (devcluster/apiproxy.py): bytes pass through both ways
untouched, each connection to its own upstream connection, and an unreachable upstream closes the
client's connection instead of hanging it."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from octo_devtools.devcluster import apiproxy


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(b"echo:" + data)
        await writer.drain()
    writer.close()


async def test_forwards_both_ways_per_connection() -> None:
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
    target = upstream.sockets[0].getsockname()[:2]
    listen = ("127.0.0.1", _free_port())
    proxy = asyncio.create_task(apiproxy.serve(listen, target))
    try:
        for _ in range(50):
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection(*listen)
                break
            await asyncio.sleep(0.05)
        second_reader, second_writer = await asyncio.open_connection(*listen)
        writer.write(b"one")
        second_writer.write(b"two")
        assert await reader.readexactly(8) == b"echo:one"
        assert await second_reader.readexactly(8) == b"echo:two"
        writer.close()
        second_writer.close()
    finally:
        proxy.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await proxy
        upstream.close()


async def test_unreachable_upstream_closes_the_client_connection() -> None:
    listen = ("127.0.0.1", _free_port())
    proxy = asyncio.create_task(apiproxy.serve(listen, ("127.0.0.1", _free_port())))
    try:
        for _ in range(50):
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection(*listen)
                break
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        proxy.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await proxy
