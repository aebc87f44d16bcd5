"""``controller-sim``: run the Communication Controller simulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from octo_devtools.controller_sim.harness import READY_PREFIX, TOKEN_ENV
from octo_devtools.controller_sim.options import (
    DEFAULT_MAX_MESSAGE_SIZE,
    REAL_CONTROLLER_MAX_MESSAGE_SIZE,
    SimulatorOptions,
)
from octo_devtools.controller_sim.server import Simulator

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="controller-sim",
        description="A fake OctoMesh Communication Controller: the SignalR operator hub at /operatorHub "
        "plus an admin API at /admin (see docs/controller-simulator.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=5000, help="port to listen on; 0 picks a free one (default 5000)"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"require this bearer token on the hub (default: ${TOKEN_ENV}, else anonymous)",
    )
    parser.add_argument(
        "--ping-interval", type=float, default=15.0, help="seconds of send idleness before a Ping"
    )
    parser.add_argument(
        "--client-timeout", type=float, default=30.0, help="drop a client silent this many seconds"
    )
    parser.add_argument(
        "--handshake-timeout", type=float, default=15.0, help="seconds allowed for the handshake"
    )
    parser.add_argument(
        "--negotiate-timeout",
        type=float,
        default=15.0,
        help="seconds a negotiated connection token stays valid",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--max-message-size",
        type=int,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        help=f"largest accepted hub message in bytes (default {DEFAULT_MAX_MESSAGE_SIZE}, ASP.NET's default)",
    )
    size.add_argument(
        "--real-controller-limits",
        action="store_const",
        dest="max_message_size",
        const=REAL_CONTROLLER_MAX_MESSAGE_SIZE,
        help="accept messages up to 100 MB, as the real Communication Controller does",
    )
    parser.add_argument(
        "--legacy-version-check",
        action="store_true",
        help="accept only handshake version 1 (ASP.NET Core <= 7)",
    )
    parser.add_argument(
        "--detailed-errors",
        action="store_true",
        help="append exception details to error texts (EnableDetailedErrors)",
    )
    parser.add_argument("--state-file", help="keep pools and workloads in this JSON file across restarts")
    parser.add_argument(
        "--contract",
        choices=("pools", "deploymentsites"),
        default="pools",
        help="controller generation: pool-era or DeploymentSite-era hub names (default pools)",
    )
    parser.add_argument(
        "--without-method",
        action="append",
        default=[],
        metavar="NAME",
        help="act as an older controller without this hub method, e.g. ReportWorkloadScaleStatusAsync "
        "(repeatable)",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    options = SimulatorOptions(
        token=args.token or None,
        ping_interval=args.ping_interval,
        client_timeout=args.client_timeout,
        handshake_timeout=args.handshake_timeout,
        negotiate_timeout=args.negotiate_timeout,
        max_message_size=args.max_message_size,
        legacy_version_check=args.legacy_version_check,
        detailed_errors=args.detailed_errors,
        state_file=args.state_file,
        missing_methods=frozenset(args.without_method),
        contract=args.contract,
    )
    simulator = Simulator(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    base_url = await simulator.start(args.host, args.port)
    logger.info("bearer token %s", "required" if options.token else "not required")
    print(f"{READY_PREFIX}{base_url}", flush=True)  # SimulatorProcess waits for this line
    await stop.wait()
    logger.info("shutting down: asking clients to reconnect")
    await simulator.stop(graceful=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(args))
    except ValueError as exc:  # invalid option values
        sys.exit(f"controller-sim: {exc}")


if __name__ == "__main__":
    main()
