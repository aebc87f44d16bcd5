"""Ways to run the simulator from tests: in-process on the test's event loop, or as a child process
(for tests that ``kill -9`` the controller)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from octo_devtools.controller_sim.admin_client import AdminClient
from octo_devtools.controller_sim.hub import HUB_PATH
from octo_devtools.controller_sim.options import SimulatorOptions
from octo_devtools.controller_sim.server import Simulator

READY_PREFIX = "controller-sim listening on "
TOKEN_ENV = "CONTROLLER_SIM_TOKEN"


@dataclass
class RunningSimulator:
    base_url: str  # the CommunicationControllerUri the operator is configured with
    admin: AdminClient
    simulator: Simulator  # direct access to state and hub, for white-box assertions

    @property
    def hub_url(self) -> str:
        return self.base_url + HUB_PATH

    @property
    def options(self) -> SimulatorOptions:
        return self.simulator.options


@contextlib.asynccontextmanager
async def running_simulator(
    options: SimulatorOptions | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Start a simulator on the running event loop (free loopback port by default), stop it on exit."""
    simulator = Simulator(options)
    base_url = await simulator.start(host, port)
    admin = AdminClient(base_url)
    try:
        yield RunningSimulator(base_url=base_url, admin=admin, simulator=simulator)
    finally:
        await admin.close()
        await simulator.stop()


def cli_arguments(options: SimulatorOptions) -> list[str]:
    """Command-line flags for ``controller-sim`` equivalent to ``options`` (the token goes via env)."""
    args = [
        f"--ping-interval={options.ping_interval}",
        f"--client-timeout={options.client_timeout}",
        f"--handshake-timeout={options.handshake_timeout}",
        f"--negotiate-timeout={options.negotiate_timeout}",
        f"--max-message-size={options.max_message_size}",
    ]
    if options.legacy_version_check:
        args.append("--legacy-version-check")
    if options.detailed_errors:
        args.append("--detailed-errors")
    if options.state_file:
        args.append(f"--state-file={options.state_file}")
    return args


class SimulatorProcess:
    """``controller-sim`` as a child process. Restarts reuse the first port, so clients can come back.

    Without an explicit ``state_file`` one is created in a temporary directory, so pools and
    workloads survive :meth:`kill` + :meth:`start` the way they survive a controller pod restart.
    """

    def __init__(self, options: SimulatorOptions | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        options = options or SimulatorOptions()
        if options.state_file is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="controller-sim-")
            options = SimulatorOptions(**{**vars(options), "state_file": f"{self._tempdir.name}/state.json"})
        self.options = options
        self.host = host
        self.port = port
        log_fd, log_name = tempfile.mkstemp(prefix="controller-sim-", suffix=".log")
        os.close(log_fd)
        self.log_path = Path(log_name)
        self._process: asyncio.subprocess.Process | None = None
        self.base_url: str | None = None
        self._admin: AdminClient | None = None

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise RuntimeError("the simulator process has not been started")
        return self._admin

    @property
    def hub_url(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the simulator process has not been started")
        return self.base_url + HUB_PATH

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self, timeout: float = 15.0) -> str:
        if self._process is not None and self._process.returncode is None:
            raise RuntimeError("the simulator process is already running")
        env = dict(os.environ)
        env.pop(TOKEN_ENV, None)
        if self.options.token is not None:
            env[TOKEN_ENV] = self.options.token  # not on the command line, where `ps` would show it
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "octo_devtools.controller_sim.cli",
                f"--host={self.host}",
                f"--port={self.port}",
                *cli_arguments(self.options),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=env,
            )
        base_url = await self._read_ready_line(timeout)
        self.base_url = base_url
        self.port = int(base_url.rsplit(":", 1)[1])
        if self._admin is None:
            self._admin = AdminClient(base_url)
        return base_url

    async def _read_ready_line(self, timeout: float) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = (await self._process.stdout.readline()).decode()
                    if not line:
                        break  # the process exited before it was ready
                    if line.startswith(READY_PREFIX):
                        return line[len(READY_PREFIX) :].strip()
        except TimeoutError:
            pass
        await self.kill()
        raise RuntimeError(
            f"controller-sim did not start within {timeout}s; its log ({self.log_path}):\n"
            + self.log_path.read_text()
        )

    async def kill(self) -> None:
        """SIGKILL: no Close message, sockets reset, all in-memory state gone."""
        await self._signal(signal.SIGKILL)

    async def terminate(self) -> None:
        """SIGTERM: clients get Close with ``allowReconnect: true``, then the process exits."""
        await self._signal(signal.SIGTERM)

    async def _signal(self, signum: int) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signum)
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def stop(self) -> None:
        await self.terminate()
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    async def __aenter__(self) -> SimulatorProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
        self.log_path.unlink(missing_ok=True)
