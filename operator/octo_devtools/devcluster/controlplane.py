"""Start and stop etcd + kube-apiserver + kube-controller-manager on free loopback ports.

Used by `devcluster up/down` and by the pytest plugin (each with its own state directory). Every
process runs in its own session with its log in the state directory; `stop_cluster` ends exactly the
PIDs recorded in `state.json`, after checking that each PID still runs the binary that was started.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from octo_devtools.devcluster.paths import Toolchain

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
KUBECONFIG_FILE = "kubeconfig.yaml"
ADMIN_USER = "devcluster-admin"
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
# Everything `start_local_cluster` creates in the state directory; `remove_state` deletes only these.
_STATE_ENTRIES = (
    STATE_FILE,
    KUBECONFIG_FILE,
    "tokens.csv",
    "sa.key",
    "sa.pub",
    "certs",
    "etcd",
    "logs",
    "helm",
    "kube-cache",
    "node",
)
SERVICE_CIDR = "10.96.0.0/16"
# The `kubernetes` Service's IP (the first of SERVICE_CIDR); the apiserver's self-signed cert names it.
KUBERNETES_SERVICE_IP = "10.96.0.1"
SERVING_CERT = "certs/apiserver.crt"  # what kube-apiserver writes into --cert-dir at startup
# Start order; stop runs in reverse so the apiserver never loses etcd while still serving.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")


class ClusterError(RuntimeError):
    """The local cluster could not be started, reached or stopped; the message says which part."""


@dataclass
class ClusterState:
    """What `devcluster up` writes to `<state dir>/state.json` (mode 0600: it holds the token)."""

    mode: Literal["local", "kind"]
    state_dir: Path
    server: str
    token: str
    kubeconfig: Path
    pids: dict[str, int] = field(default_factory=dict)
    binaries: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    node: Literal["fake", "real"] = "fake"
    real_node: dict[str, Any] = field(default_factory=dict)  # realnode.RealNode, when node == "real"
    service_account_tokens: bool = False

    def save(self) -> None:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        data["kubeconfig"] = str(self.kubeconfig)
        path = self.state_dir / STATE_FILE
        partial = path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        partial.replace(path)

    @classmethod
    def load(cls, state_dir: Path) -> ClusterState | None:
        path = state_dir / STATE_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data["state_dir"] = Path(data["state_dir"])
        data["kubeconfig"] = Path(data["kubeconfig"])
        return cls(**data)


@dataclass(frozen=True)
class HelmHomes:
    cache: Path
    config: Path
    data: Path


def helm_homes(state_dir: Path) -> HelmHomes:
    base = state_dir / "helm"
    return HelmHomes(cache=base / "cache", config=base / "config", data=base / "data")


def cluster_env(state: ClusterState, toolchain: Toolchain) -> dict[str, str]:
    """Variables that point helm, kubectl and kubernetes clients at this cluster (PATH not merged)."""
    homes = helm_homes(state.state_dir)
    return {
        "KUBECONFIG": str(state.kubeconfig),
        "HELM_CACHE_HOME": str(homes.cache),
        "HELM_CONFIG_HOME": str(homes.config),
        "HELM_DATA_HOME": str(homes.data),
        "KUBECACHEDIR": str(state.state_dir / "kube-cache"),
    }


def tool_path_dirs(toolchain: Toolchain) -> list[str]:
    """Directories to put first on PATH: helm 4 (as `helm`) and kubectl."""
    return [str(toolchain.helm.parent), str(toolchain.kubectl.parent)]


# ---------------------------------------------------------------------------------------------------
# A small synchronous client for the few calls `up` and the fixtures make (no event loop needed).


class KubeRest:
    """Bearer-token JSON client for the local apiserver (its serving cert is self-signed)."""

    def __init__(self, server: str, token: str, timeout: float = 10.0) -> None:
        self.server = server.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._ssl = ssl.create_default_context()
        self._ssl.check_hostname = False
        self._ssl.verify_mode = ssl.CERT_NONE

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(  # noqa: S310 - the URL is our own loopback apiserver
                request, timeout=timeout or self._timeout, context=self._ssl
            ) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _decode(error.read())

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def is_ready(self) -> bool:
        try:
            status, _ = self.request("GET", "/readyz", timeout=2.0)
        except (OSError, urllib.error.URLError):
            return False
        return status == 200


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


# ---------------------------------------------------------------------------------------------------
# Processes


def free_loopback_ports(count: int) -> list[int]:
    """Ports the kernel says are free right now (all held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the test-session control plane must not outlive a killed pytest.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def pid_is_running(pid: int, binary: str | None = None) -> bool:
    """True while ``pid`` is alive (not a zombie) and, if given, still runs ``binary``."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # reap our own exited children
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        if binary is not None:
            exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
            return exe == binary
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return True


def _spawn(
    name: str,
    argv: list[str],
    logs: Path,
    die_with_parent: bool,
) -> subprocess.Popen[bytes]:
    log_path = logs / f"{name}.log"
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )


def _log_tail(state_dir: Path, component: str, lines: int = 25) -> str:
    path = state_dir / "logs" / f"{component}.log"
    if not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_local_cluster(
    state_dir: Path,
    toolchain: Toolchain,
    *,
    die_with_parent: bool = False,
    ready_timeout: float = READY_TIMEOUT_S,
    progress: Callable[[str], None] | None = None,
    service_account_tokens: bool = False,
) -> ClusterState:
    """Start the three control-plane processes and wait until the apiserver and controllers work.

    ``service_account_tokens`` (for a real node, whose pods can run in-cluster clients): the
    ServiceAccount admission plugin mounts each pod's token, and the token controller creates the
    tokens, with the apiserver's serving certificate as their ``ca.crt``.
    """
    say = progress or (lambda line: logger.info("%s", line))
    missing = toolchain.missing()
    if missing:
        raise ClusterError("binaries missing (run `devcluster prepare`): " + ", ".join(map(str, missing)))
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    logs = state_dir / "logs"
    logs.mkdir(exist_ok=True)
    for home in vars(helm_homes(state_dir)).values():
        Path(home).mkdir(parents=True, exist_ok=True)
    (state_dir / "kube-cache").mkdir(exist_ok=True)

    token = secrets.token_urlsafe(32)
    tokens = state_dir / "tokens.csv"
    _write_private(tokens, f'{token},{ADMIN_USER},{ADMIN_USER}-uid,"system:masters"\n')
    _make_service_account_keys(state_dir)
    etcd_port, etcd_peer_port, api_port = free_loopback_ports(3)
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = state_dir / KUBECONFIG_FILE
    _write_private(kubeconfig, render_kubeconfig(server, token))

    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{etcd_peer_port}"
    argv: dict[str, list[str]] = {
        "etcd": [
            str(toolchain.etcd),
            "--name=devcluster",
            f"--data-dir={state_dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=devcluster={peer_url}",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(toolchain.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={state_dir / 'certs'}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={state_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={state_dir / 'sa.key'}",
            "--profiling=false",
        ],
        "kube-controller-manager": [
            str(toolchain.kube_controller_manager),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--port=0",
            "--secure-port=0",
            f"--service-account-private-key-file={state_dir / 'sa.key'}",
            "--profiling=false",
        ],
    }
    if service_account_tokens:
        argv["kube-controller-manager"] += [
            f"--root-ca-file={state_dir / SERVING_CERT}",
            # nodelifecycle: the node's readiness is watched by `up` (which lifts the registration taint)
            "--controllers=*,-nodelifecycle",
        ]
    else:
        # No kubelet mounts service-account tokens: the admission plugin would reject pods without.
        argv["kube-apiserver"].append("--disable-admission-plugins=ServiceAccount")
        # serviceaccount-token: nothing mounts them. nodelifecycle: the fake kubelet sends no
        # heartbeats, and that controller would taint the node and evict every pod after 5 minutes.
        argv["kube-controller-manager"].append("--controllers=*,-serviceaccount-token,-nodelifecycle")
    state = ClusterState(
        mode="local",
        state_dir=state_dir,
        server=server,
        token=token,
        kubeconfig=kubeconfig,
        ports={"etcd": etcd_port, "etcd-peer": etcd_peer_port, "kube-apiserver": api_port},
        started_at=time.time(),
        service_account_tokens=service_account_tokens,
    )
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        deadline = time.monotonic() + ready_timeout
        for component in COMPONENTS:
            if component == "kube-controller-manager":
                # It gives up when the apiserver is not healthy within its own ~10 s, which a loaded
                # machine (several clusters starting at once) exceeds; start it once the apiserver is.
                _wait_until_working(state, processes, deadline - time.monotonic(), apiserver_only=True)
            processes[component] = _spawn(component, argv[component], logs, die_with_parent)
            state.pids[component] = processes[component].pid
            state.binaries[component] = argv[component][0]
            state.save()  # saved after each spawn so `down` can clean up even a half-started cluster
        say(f"devcluster: started etcd, kube-apiserver and kube-controller-manager; waiting for {server}")
        _wait_until_working(state, processes, max(deadline - time.monotonic(), 1.0))
    except BaseException:
        stop_cluster(state)
        raise
    return state


def _wait_until_working(
    state: ClusterState,
    processes: dict[str, subprocess.Popen[bytes]],
    timeout: float,
    *,
    apiserver_only: bool = False,
) -> None:
    rest = KubeRest(state.server, state.token)
    deadline = time.monotonic() + timeout

    def check_alive() -> None:
        for component, process in processes.items():
            code = process.poll()
            if code is not None:
                raise ClusterError(
                    f"{component} exited with code {code} during startup; its log "
                    f"({state.state_dir / 'logs' / (component + '.log')}) ends with:\n"
                    + _log_tail(state.state_dir, component),
                )

    while not rest.is_ready():
        check_alive()
        if time.monotonic() > deadline:
            raise ClusterError(
                f"kube-apiserver did not answer /readyz within {timeout:.0f} s; its log ends with:\n"
                + _log_tail(state.state_dir, "kube-apiserver"),
            )
        time.sleep(0.1)
    if apiserver_only:
        return
    # The serviceaccount controller creating `default/default` shows kube-controller-manager is
    # connected and running its controllers (Deployment -> ReplicaSet -> Pod needs it).
    while not _default_account_ready(rest, state):
        check_alive()
        if time.monotonic() > deadline:
            raise ClusterError(
                "kube-controller-manager did not create the default ServiceAccount within "
                f"{timeout:.0f} s; its log ends with:\n"
                + _log_tail(state.state_dir, "kube-controller-manager"),
            )
        time.sleep(0.1)


def _default_account_ready(rest: KubeRest, state: ClusterState) -> bool:
    status, body = rest.get("/api/v1/namespaces/default/serviceaccounts/default")
    if status != 200:
        return False
    # With service-account tokens on, a pod is admitted only once its account has its token.
    return not state.service_account_tokens or bool(body.get("secrets"))


#: How long the controllers may take to give a new namespace its ``default`` account and token.
TOKEN_TIMEOUT_S = 30.0


def wait_for_default_token(rest: KubeRest, namespace: str, timeout: float = TOKEN_TIMEOUT_S) -> None:
    """With service-account tokens on (the real node), a pod is admitted only once its account has its
    token: wait for the namespace's ``default`` account to get one."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = rest.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
        if status == 200 and body.get("secrets"):
            return
        if time.monotonic() > deadline:
            raise ClusterError(
                f"namespace {namespace}: the default ServiceAccount got no token in {timeout} s"
            )
        time.sleep(0.1)


def render_kubeconfig(server: str, token: str, *, name: str = "devcluster") -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        # kube-apiserver 1.20 serves HTTPS only, with a self-signed certificate made at startup.
        "clusters": [{"name": name, "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": ADMIN_USER, "namespace": "default"}}
        ],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _make_service_account_keys(state_dir: Path) -> None:
    key, pub = state_dir / "sa.key", state_dir / "sa.pub"
    for argv in (
        ["openssl", "genrsa", "-out", str(key), "2048"],
        ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(argv[:2])} failed: {result.stderr.strip()}")
    key.chmod(0o600)


def cluster_is_healthy(state: ClusterState) -> bool:
    if state.mode != "local":
        return False
    if not all(pid_is_running(pid, state.binaries.get(name)) for name, pid in state.pids.items()):
        return False
    if set(state.pids) != set(COMPONENTS):
        return False
    return KubeRest(state.server, state.token).is_ready()


def stop_cluster(state: ClusterState, grace: float = STOP_GRACE_S) -> list[int]:
    """SIGTERM each recorded PID (if it still runs its binary), SIGKILL after ``grace``. Returns PIDs."""
    targets = [
        (name, pid)
        for name in reversed(COMPONENTS)
        if (pid := state.pids.get(name)) is not None and pid_is_running(pid, state.binaries.get(name))
    ]
    # One at a time: the apiserver's shutdown still writes to etcd (its endpoint lease); with etcd
    # already gone it hangs until SIGKILL.
    for name, pid in targets:
        logger.debug("stopping %s (pid %d)", name, pid)
        _signal(pid, signal.SIGTERM)
        if _wait_gone(pid, grace):
            continue
        logger.warning("%s (pid %d) ignored SIGTERM for %.0f s; sending SIGKILL", name, pid, grace)
        _signal(pid, signal.SIGKILL)
        if not _wait_gone(pid, 5.0):
            raise ClusterError(f"{name} (pid {pid}) survived SIGKILL")
    return [pid for _, pid in targets]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def remove_state(state_dir: Path) -> None:
    """Delete what `start_local_cluster` created, and the directory itself if nothing else is in it."""
    for entry in _STATE_ENTRIES:
        path = state_dir / entry
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    with contextlib.suppress(OSError):
        state_dir.rmdir()
