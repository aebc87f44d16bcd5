"""The API server as pods of the real node see it: a TCP forwarder from the ``kubernetes`` Service IP
(an address on the node's bridge) to the loopback-only kube-apiserver.

devcluster's apiserver listens on 127.0.0.1 only, and there is no kube-proxy to route the Service IP.
The apiserver's self-signed certificate names the Service IP (10.96.0.1), so an in-cluster client
that connects there verifies TLS with the service-account ``ca.crt`` as in any cluster; only the port
differs (the apiserver's own, set as ``KUBERNETES_SERVICE_PORT`` in the pod). TLS passes through
untouched: the forwarder never sees a token.

    python -m octo_devtools.devcluster.apiproxy --listen 10.96.0.1:PORT --target 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

logger = logging.getLogger(__name__)
_CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


async def _forward(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, target: tuple[str, int]
) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
    except OSError as error:
        logger.warning("apiproxy: cannot reach the apiserver at %s:%d: %s", *target, error)
        client_writer.close()
        return
    await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def serve(listen: tuple[str, int], target: tuple[str, int]) -> None:
    server = await asyncio.start_server(lambda r, w: _forward(r, w, target), *listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logger.info("apiproxy: %s:%d -> %s:%d", *listen, *target)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="apiproxy", description=__doc__)
    parser.add_argument("--listen", required=True, type=_address, help="ADDRESS:PORT")
    parser.add_argument("--target", required=True, type=_address, help="ADDRESS:PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(serve(args.listen, args.target))


if __name__ == "__main__":
    main()
