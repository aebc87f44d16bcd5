"""The CPU one release watch costs to open, read and close.

``python -m benchmarks.watch_cost [--watches N]``. Every deploy opens two watches (pods, Warning
events) and opens them again whenever the API server ends one. Both readers below watch the same
loopback HTTP stream (an aiohttp server sending 5 events per watch), each for N watches one after
another, and the process CPU they take is compared:

* ours: :func:`communication_operator.kube.watch_stream.watch_stream` on the caller's client;
* baseline: kubernetes-asyncio's ``watch.Watch(return_type="object").stream(...)``, which the release
  watcher used before: it builds a new ``ApiClient`` per watch (an SSL context with the CA bundle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import watch

from communication_operator.kube.watch_stream import watch_stream

EVENTS_PER_WATCH = 5


def _event(index: int) -> bytes:
    pod = {"metadata": {"name": f"web-{index}", "resourceVersion": str(100 + index)}, "status": {}}
    return json.dumps({"type": "MODIFIED", "object": pod}).encode() + b"\n"


async def _serve() -> TestServer:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for index in range(EVENTS_PER_WATCH):
            await response.write(_event(index))
        return response

    app = web.Application()
    app.router.add_get("/pods", handler)
    server = TestServer(app)
    await server.start_server()
    return server


async def _cpu_of(watches: int, one_watch: Callable[[], Awaitable[int]]) -> float:
    start = time.process_time()
    for _ in range(watches):
        if await one_watch() != EVENTS_PER_WATCH:
            raise RuntimeError("a watch lost events")
    return time.process_time() - start


async def main(watches: int) -> None:
    server = await _serve()
    async with aiohttp.ClientSession() as session:

        async def list_namespaced_pod(namespace: str, **kwargs: Any) -> aiohttp.ClientResponse:
            """Documented like the generated API so kubernetes-asyncio finds its return type.

            :return: V1PodList
            """
            return await session.get(server.make_url("/pods"), params={"namespace": namespace})

        async def ours() -> int:
            return len([event async for event in watch_stream(list_namespaced_pod, "ns")])

        async def baseline() -> int:
            count = 0
            async with watch.Watch(return_type="object").stream(
                list_namespaced_pod, "ns", timeout_seconds=30
            ) as stream:
                async for _ in stream:
                    count += 1
            return count

        await ours(), await baseline()  # warm both paths (imports, first connection)
        ours_cpu = await _cpu_of(watches, ours)
        baseline_cpu = await _cpu_of(watches, baseline)
    await server.close()
    print(f"{watches} watches of {EVENTS_PER_WATCH} events each, one after another, process CPU:")
    for name, cpu in (
        ("ours (watch_stream, shared client)", ours_cpu),
        ("baseline (kubernetes-asyncio Watch)", baseline_cpu),
    ):
        print(f"  {name:38} {cpu:7.3f} s  {cpu / watches * 1000:6.2f} ms/watch")
    print(f"  {'ratio ours/baseline':38} {ours_cpu / baseline_cpu:7.3f}")


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--watches", type=int, default=200)
    asyncio.run(main(parser.parse_args().watches))


if __name__ == "__main__":
    cli()
