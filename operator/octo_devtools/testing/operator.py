"""``communication-operator run`` as a child process, the way it runs in its container, for fault tests.

The operator runs in a PID namespace of its own when the kernel allows unprivileged user namespaces
(``unshare``): a small init is PID 1 and the operator is PID 2 on every start, as under tini in the
shipped image. That matters for two reasons:

* :meth:`OperatorProcess.kill` is a container kill: the namespace's init dies and the kernel kills every
  process in it at once, the operator and its helm children alike (a helm that outlived the operator
  would finish the run the test meant to interrupt).
* A restarted operator has the same PID as the one that was killed, so whatever it keys by PID (values
  directories) looks like its own.

Without ``unshare`` the operator runs in a new session instead, :meth:`kill` stops and SIGKILLs its
whole process tree, and PIDs differ between starts (``pid_namespace`` is then False).

Configuration is only ``OPERATOR__*`` environment variables, as a user sets them. Output of every
start is appended to one log file (``log_path``), so a test can sweep all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from octo_devtools.testing.waiting import eventually

# PID 1 of the namespace: run the operator as a child (PID 2, as under tini) and exit with its status.
_INIT_SCRIPT = '"$@"; exit $?'
CONNECTED_GAUGE = "communication_operator_hub_connected"
_UNSHARE = ("--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--kill-child")


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG(SIGKILL): the operator must not outlive a test run that was killed with -9.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@functools.cache
def pid_namespaces_available() -> bool:
    """Whether ``unshare`` can give the operator a PID namespace of its own here (no privileges)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        probe = subprocess.run(
            [unshare, *_UNSHARE, "sh", "-c", "echo $$"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "1"


def operator_command() -> list[str]:
    """The installed ``communication-operator`` next to this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("communication-operator")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "communication_operator.cli"]


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children.extend(int(p) for p in task.read_text().split())
    return children


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, parents before children."""
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in _children(pending.pop()):
            found.append(child)
            pending.append(child)
    return found


def _alive(pid: int) -> bool:
    """Running or stopped, not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _namespace_pid(pid: int) -> int | None:
    """The PID of ``pid`` in its own (innermost) PID namespace."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return pid


class OperatorProcess:
    """One operator, started and stopped any number of times with the same environment and log file."""

    def __init__(
        self,
        env: dict[str, str],
        kubeconfig: Path,
        log_path: Path,
        *,
        pid_namespace: bool | None = None,
    ) -> None:
        self.env = env
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.pid_namespace = pid_namespaces_available() if pid_namespace is None else pid_namespace
        self.health_port = int(env.get("OPERATOR__HEALTH__PORT", "0"))
        self.metrics_port = int(env.get("OPERATOR__METRICS__PORT", "0"))
        self._process: asyncio.subprocess.Process | None = None
        self.starts = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("the operator is already running")
        argv = [*operator_command(), "run", f"--kubeconfig={self.kubeconfig}"]
        if self.pid_namespace:
            argv = ["unshare", *_UNSHARE, "sh", "-c", _INIT_SCRIPT, "operator-init", *argv]
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- operator start {self.starts} ---\n".encode())
            log.flush()
            self._process = await asyncio.create_subprocess_exec(
                *argv,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def operator_pid(self) -> int | None:
        """The operator's own PID as seen from here."""
        if not self.running:
            return None
        assert self._process is not None
        if not self.pid_namespace:
            return self._process.pid
        # unshare → init (PID 1 inside) → the operator (PID 2 inside) → helm ...
        for pid in descendants(self._process.pid):
            if _namespace_pid(pid) == 2:
                return pid
        return None

    @property
    def pid_in_namespace(self) -> int | None:
        """The operator's PID as it sees itself (2 in its PID namespace, as under tini)."""
        pid = self.operator_pid
        return None if pid is None else _namespace_pid(pid)

    async def kill(self) -> None:
        """SIGKILL, as when the container is killed: the operator and every process it started die
        at once; nothing gets to clean up."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        tree = [process.pid, *descendants(process.pid)]
        if self.pid_namespace:
            process.kill()  # --kill-child: the namespace's init dies, the kernel kills the rest
        else:
            for pid in tree:  # stop first, so nothing forks or reaps while we collect
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            for pid in [*tree, *descendants(process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        await process.wait()

        async def all_gone() -> bool:
            return not any(_alive(pid) for pid in tree)

        await eventually(all_gone, timeout=10, interval=0.05, what="the operator's processes gone")

    async def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM to the operator (as tini forwards it); SIGKILL after ``timeout``. Returns the exit
        status."""
        process = self._process
        if process is None:
            raise RuntimeError("the operator was never started")
        if process.returncode is not None:
            return process.returncode
        target = self.operator_pid or process.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            await self.kill()
            return -signal.SIGKILL

    # --- observation ----------------------------------------------------------------------------

    async def health(self) -> dict[str, Any] | None:
        """The ``/healthz`` body, or None while it does not answer 200."""
        return await self._get_json(f"http://127.0.0.1:{self.health_port}/healthz")

    async def connected(self) -> bool:
        """The hub connection is open, from the ``communication_operator_hub_connected`` gauge (live;
        kopf caches ``/healthz`` answers for 10 s)."""
        return await self.metric_or_none(CONNECTED_GAUGE) == 1

    async def disconnected(self) -> bool:
        """The operator runs and knows it has no connection to the controller."""
        return await self.metric_or_none(CONNECTED_GAUGE) == 0

    async def wait_connected(self, timeout: float = 60.0) -> None:
        async def probe() -> bool:
            if not self.running:
                raise AssertionError(f"the operator exited; its log:\n{self.log_tail()}")
            return await self.connected()

        try:
            await eventually(probe, timeout=timeout, interval=0.2, what="the operator connected")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nits log:\n{self.log_tail()}") from None

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none, or when the
        endpoint does not answer)."""
        return await self.metric_or_none(name, **labels) or 0.0

    async def metric_or_none(self, name: str, **labels: str) -> float | None:
        """Like :meth:`metric`, but None while ``/metrics`` does not answer."""
        text = await self._get_text(f"http://127.0.0.1:{self.metrics_port}/metrics")
        if text is None:
            return None
        total = 0.0
        for match in re.finditer(rf"^{re.escape(name)}(?:\{{(.*?)\}})? (\S+)$", text, re.M):
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
        return total

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self) -> list[str]:
        return self.log_text().splitlines()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_lines()[-lines:])

    async def _get_text(self, url: str) -> str | None:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
                http.get(url) as response,
            ):
                if response.status == 200:
                    return await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        return None

    async def _get_json(self, url: str) -> dict[str, Any] | None:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
                http.get(url) as response,
            ):
                if response.status == 200:
                    return dict(await response.json())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return None
