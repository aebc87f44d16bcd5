"""Host-side pieces of the kind e2e suite: the controller simulator and a chart repository, both
listening on every interface so pods in kind reach them through the docker network's gateway.

Both run as plain processes/threads (not tied to an asyncio loop) so one instance serves the whole
session while every test has its own event loop.
"""

from __future__ import annotations

import ipaddress
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octo_devtools.controller_sim.harness import READY_PREFIX
from octo_devtools.devcluster.chartrepo import ChartRepository

KIND_NETWORK = "kind"


class E2ESetupError(RuntimeError):
    """The e2e environment is not usable; the message says what is missing and how to provide it."""


def host_address(explicit: str | None = None, docker: str = "docker") -> str:
    """The host's address as pods in kind see it: ``explicit`` (``$E2E_HOST_ADDRESS``) if given, else
    the IPv4 gateway of the ``kind`` docker network (the bridge's address on the host)."""
    if explicit:
        return explicit
    if shutil.which(docker) is None:
        raise E2ESetupError(
            "E2E_HOST_ADDRESS is not set and docker is not on PATH to look up the kind network's gateway"
        )
    result = subprocess.run(
        [docker, "network", "inspect", KIND_NETWORK, "--format", "{{json .IPAM.Config}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise E2ESetupError(f"docker network inspect {KIND_NETWORK} failed: {result.stderr.strip()}")
    return ipv4_gateway(json.loads(result.stdout or "null"))


def ipv4_gateway(ipam_config: Any) -> str:
    """The first IPv4 ``Gateway`` in a docker network's ``IPAM.Config`` list (kind also has IPv6)."""
    for entry in ipam_config or []:
        gateway = (entry or {}).get("Gateway")
        if not gateway:
            continue
        try:
            if ipaddress.ip_address(gateway).version == 4:
                return str(gateway)
        except ValueError:
            continue
    raise E2ESetupError(f"the {KIND_NETWORK} docker network has no IPv4 gateway: {ipam_config!r}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


@dataclass
class HostSimulator:
    """``controller-sim`` on ``0.0.0.0:port`` as a child process with a state file, so a kill + start
    keeps pools and workloads (like a controller pod restart). The admin API is used via loopback."""

    state_file: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    #: Where it listens: every interface (kind), or one address, e.g. the real node's bridge gateway.
    bind_host: str = "0.0.0.0"
    _process: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        host = "127.0.0.1" if self.bind_host == "0.0.0.0" else self.bind_host
        return f"http://{host}:{self.port}"

    def controller_uri(self, host: str) -> str:
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 15.0) -> None:
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError("the simulator is already running")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "octo_devtools.controller_sim.cli",
                    f"--host={self.bind_host}",
                    f"--port={self.port}",
                    f"--state-file={self.state_file}",
                ],
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    break
                line = self._process.stdout.readline().decode()
                if not line:
                    break
                if line.startswith(READY_PREFIX):
                    return
        self.kill()
        raise E2ESetupError(
            f"controller-sim did not start on port {self.port}; its log ({self.log_path}):\n"
            + self.log_path.read_text(errors="replace")[-3000:]
        )

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> str:
        old = self.pid
        self.kill()
        self.start()
        return f"pid {old} killed with SIGKILL, pid {self.pid} started with the same state file"


def host_chart_repo(chart_dirs: list[Path], root: Path, helm: str, host: str) -> ChartRepository:
    """The devcluster's chart repository, served on every interface with ``host`` in its index, so kind
    pods can reach it."""
    env = dict(os.environ)
    for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[name] = str(root.parent / "helm-home" / name.lower())
    return ChartRepository(chart_dirs, root, Path(helm), env, bind_host="0.0.0.0", advertise_host=host)


def image_parts(image: str) -> tuple[str, str]:
    """``repo/name:tag`` → (``repo/name``, ``tag``); a registry port is not mistaken for a tag."""
    name, colon, tag = image.rpartition(":")
    if not colon or "/" in tag:
        return image, "latest"
    return name, tag


def operator_chart_values(
    *, image: str, controller_uri: str, pool_namespace: str, broker_password: str
) -> dict[str, Any]:
    """Values for ``charts/communication-operator`` in the e2e run: central mode, the kind-loaded image."""
    repository, tag = image_parts(image)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "operator": {
            "controllerUri": controller_uri,
            "autoManagePools": True,
            "poolNamespace": pool_namespace,
            "watchNamespace": pool_namespace,
            "poolRegistrationRetrySeconds": 5,
            "helm": {"timeoutSeconds": 180},
            "log": {"format": "text", "level": "INFO"},
        },
        "broker": {"host": "rabbitmq.e2e.invalid", "username": "e2e-broker", "password": broker_password},
        "rbac": {"scope": "cluster"},
    }
