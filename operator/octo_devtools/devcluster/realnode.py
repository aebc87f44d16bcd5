"""The real node: containerd + kubelet 1.20.2 in a private mount namespace, CNI bridge, kube-scheduler.

Everything lives under ``<state dir>/node``. What the kubelet, containerd and the CNI plugins would
otherwise write on the host stays inside a persistent mount namespace (``node/mntns``): a tmpfs on
/run, /var/log and /var/lib bound to directories of the state dir, and the kernel tunables the kubelet
insists on read back from files holding the values it wants, so it never writes the host's. Host-wide
objects are per cluster and named after the state dir: the cgroup root ``/octo-node-<id>``, the bridge
``octo<id>`` and a free /24 of 10.244.0.0/16 (allocated under a lock, so two clusters coexist).

`stop_real_node` ends exactly what `start_real_node` started, by PID, then every process left in the
node's cgroup root or mount namespace (containers, shims: ours by construction), and removes the
namespace, the cgroups and the bridge.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from octo_devtools.devcluster import images
from octo_devtools.devcluster.controlplane import (
    KUBERNETES_SERVICE_IP,
    ClusterError,
    ClusterState,
    KubeRest,
    _log_tail,
    free_loopback_ports,
    pid_is_running,
)
from octo_devtools.devcluster.paths import NodeToolchain, cache_root

logger = logging.getLogger(__name__)

# Inside the node's mount namespace (its own tmpfs on /run): a unix socket path under a deep state dir
# would pass the 104-byte limit, and two clusters' sockets never meet.
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
KUBELET_ROOT = Path("/var/lib/kubelet")
NODE_NAME = "localhost"  # must resolve to 127.0.0.1: the apiserver reaches the kubelet (logs, exec) by it
NODE_DIR = "node"
NODE_READY_TIMEOUT_S = 90.0
STOP_GRACE_S = 10.0
CGROUP_FS = Path("/sys/fs/cgroup")
POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
CLUSTER_DNS = "10.96.0.10"  # no DNS server answers there; without it every pod sync warns MissingClusterDNS
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# What kubelet 1.20's container manager writes unless it reads these values (KernelTunableModify);
# net.ipv4.ip_forward is what the CNI bridge plugin (isGateway) writes.
KERNEL_TUNABLES = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
    "net/ipv4/ip_forward": "1",
}
# What the node's mount namespace replaces (so a state dir there would be invisible to its daemons).
SHADOWED_DIRS = (Path("/run"), Path("/var/run"), Path("/var/log"), Path("/var/lib"))
# A registered node with no daemon recorded yet is being started; older than this, it was abandoned.
ABANDONED_AFTER_S = 600.0
# Start order; stop runs in reverse (the API forwarder and the scheduler first, containerd last).
NODE_COMPONENTS = ("containerd", "kubelet", "kube-scheduler", "api-proxy")


@dataclass
class RealNode:
    """What `start_real_node` records in state.json (``ClusterState.real_node``)."""

    node_dir: str
    name: str
    cgroup_root: str
    bridge: str
    subnet: str
    containerd_socket: str
    pids: dict[str, int] = field(default_factory=dict)
    binaries: dict[str, str] = field(default_factory=dict)
    # host:port where pods reach the apiserver (apiproxy.py); the host is the `kubernetes` Service IP
    api_address: str = ""

    @classmethod
    def from_state(cls, state: ClusterState) -> RealNode | None:
        return cls(**state.real_node) if state.real_node else None

    @property
    def gateway(self) -> str:
        """The host's address on the node's bridge: what pods reach the host by (bind servers there)."""
        return str(next(ipaddress.ip_network(self.subnet).hosts()))

    @property
    def api_port(self) -> int:
        return int(self.api_address.rpartition(":")[2])

    @property
    def mntns(self) -> Path:
        return Path(self.node_dir) / "mntns"


def node_id(state_dir: Path) -> str:
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:6]


# ---------------------------------------------------------------------------------------------------
# Start


def start_real_node(
    state: ClusterState,
    node: NodeToolchain,
    *,
    die_with_parent: bool = False,
    progress: Callable[[str], None] | None = None,
    ready_timeout: float = NODE_READY_TIMEOUT_S,
) -> RealNode:
    """Bring up the node for the running control plane in ``state``; returns when it is Ready."""
    say = progress or (lambda line: logger.info("%s", line))
    missing = node.missing()
    if missing:
        raise ClusterError(
            "node binaries missing (run `devcluster prepare`): " + ", ".join(map(str, missing))
        )
    node_dir = state.state_dir / NODE_DIR
    shadowed = [d for d in SHADOWED_DIRS if node_dir.resolve().is_relative_to(d)]
    if shadowed:
        raise ClusterError(f"the state dir must not be under {shadowed[0]}: the node's namespace hides it")
    ident = node_id(state.state_dir)
    real = RealNode(
        node_dir=str(node_dir),
        name=NODE_NAME,
        cgroup_root=f"/octo-node-{ident}",
        bridge=f"octo{ident}",
        subnet="",
        containerd_socket=CONTAINERD_SOCKET,
    )
    _sweep_quietly(say)
    state.real_node = asdict(real)
    state.save()  # from here on `down` knows what to clean up
    _remember(real)
    for sub in ("containerd", "cni/net.d", "cni/ipam", "varlog", "varlib", "tunables", "images"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    real.subnet = _create_bridge(real.bridge)
    state.real_node = asdict(real)
    state.save()
    _remember(real)
    _make_cgroup_root(real.cgroup_root)
    _write_containerd_config(node_dir, node)
    _write_cni_config(node_dir, real)
    _create_mount_namespace(node_dir)
    logs = state.state_dir / "logs"
    env = _node_env(node)

    def spawn(component: str, argv: list[str], in_namespace: bool) -> subprocess.Popen[bytes]:
        full = ["nsenter", f"--mount={real.mntns}", "--", *argv] if in_namespace else argv
        with (logs / f"{component}.log").open("ab") as log:
            process = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )
        real.pids[component] = process.pid
        real.binaries[component] = argv[0]  # nsenter execs it: the PID runs this binary
        state.real_node = asdict(real)
        state.save()
        _remember(real)
        return process

    containerd = spawn(
        "containerd", [str(node.containerd), "--config", str(node_dir / "containerd" / "config.toml")], True
    )
    # The socket as seen from outside: through the daemon's own root in its mount namespace.
    socket_path = Path(f"/proc/{containerd.pid}/root") / CONTAINERD_SOCKET.lstrip("/")
    _wait_for_socket(socket_path, containerd, state.state_dir, ready_timeout)
    _import_images(node, real, node_dir / "images")
    say("devcluster: containerd is up with the local images; starting kubelet and kube-scheduler")
    kubelet = spawn("kubelet", _kubelet_argv(state, node, real), True)
    spawn(
        "kube-scheduler",
        [
            str(node.kube_scheduler),
            f"--kubeconfig={state.kubeconfig}",
            "--leader-elect=false",
            "--port=0",
            "--secure-port=0",
            "--profiling=false",
        ],
        False,
    )
    api_port = state.ports["kube-apiserver"]
    real.api_address = f"{KUBERNETES_SERVICE_IP}:{api_port}"
    spawn(
        "api-proxy",
        [
            sys.executable,
            "-m",
            "octo_devtools.devcluster.apiproxy",
            f"--listen={real.api_address}",
            f"--target=127.0.0.1:{api_port}",
        ],
        False,
    )
    _wait_node_ready(state, real, kubelet, ready_timeout)
    return real


def _sweep_quietly(say: Callable[[str], None]) -> None:
    try:
        sweep_abandoned_nodes(say)
    except ClusterError as error:  # someone else's leftovers must not stop this cluster
        logger.warning("could not clean up an abandoned real node: %s", error)


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _node_env(node: NodeToolchain) -> dict[str, str]:
    root = node.containerd.parent.parent.parent  # <node-root>/usr/bin/containerd
    path = [str(root / "usr" / "bin"), str(root / "usr" / "sbin"), "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return {"PATH": ":".join(path), "HOME": "/root", "LANG": "C.UTF-8"}


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    """Serialises subnet allocation between clusters on this machine."""
    path = cache_root() / "realnode-subnets.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _used_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    nets = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    return nets


def _create_bridge(bridge: str) -> str:
    """Create the node's bridge with the first free /24 of POD_NETWORK as gateway; returns the subnet."""
    with _host_lock():
        _ip("link", "del", bridge, check=False)  # a leftover of a killed run with this state dir
        used = _used_networks()
        for subnet in POD_NETWORK.subnets(new_prefix=24):
            if not any(subnet.overlaps(net) for net in used):
                break
        else:
            raise ClusterError(f"no free /24 left in {POD_NETWORK} for the node's pod network")
        gateway = next(subnet.hosts())
        _ip("link", "add", "name", bridge, "type", "bridge")
        _ip("addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", bridge)
        # The `kubernetes` Service IP, local on this bridge: pods reach the API forwarder there (two
        # clusters' bridges may both carry it; each forwarder listens on its own apiserver's port).
        _ip("addr", "add", f"{KUBERNETES_SERVICE_IP}/32", "dev", bridge)
        _ip("link", "set", bridge, "up")
    return str(subnet)


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _cgroup_hierarchies() -> list[Path]:
    return sorted(p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink() and os.path.ismount(p))


def _make_cgroup_root(cgroup_root: str) -> None:
    # kubelet 1.20 wants --cgroup-root to exist in every hierarchy; its own root keeps two kubelets
    # from treating each other's pod cgroups as orphans.
    for hierarchy in _cgroup_hierarchies():
        path = hierarchy / cgroup_root.lstrip("/")
        path.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":  # a fresh cpuset has no cpus/mems; copy the parent's
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (path / knob).write_text((hierarchy / knob).read_text())


def _write_containerd_config(node_dir: Path, node: NodeToolchain) -> None:
    c = node_dir / "containerd"
    config = f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{CONTAINERD_SOCKET}"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # root without CAP_SYS_RESOURCE: runc cannot set the sandbox's oom_score_adj -998 (every sandbox
  # fails "can't get final child's PID from pipe") -> clamp it to containerd's own
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{node.runc}"
        Root = "{c / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{node.cni_bin_dir}"
    conf_dir = "{node_dir / "cni" / "net.d"}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
"""
    (c / "config.toml").write_text(config)


def _write_cni_config(node_dir: Path, real: RealNode) -> None:
    conflist = {
        "cniVersion": "0.4.0",
        "name": "devcluster-bridge",
        "plugins": [
            {
                "type": "bridge",
                "bridge": real.bridge,
                "isGateway": True,
                "ipMasq": False,  # no iptables: pods talk to the host and each other on the bridge
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(node_dir / "cni" / "ipam"),
                    "ranges": [[{"subnet": real.subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }
    (node_dir / "cni" / "net.d" / "10-bridge.conflist").write_text(json.dumps(conflist, indent=2))


def _create_mount_namespace(node_dir: Path) -> None:
    mntns = node_dir / "mntns"
    mntns.touch()
    tunables = node_dir / "tunables"
    binds = []
    for key, value in KERNEL_TUNABLES.items():
        holder = tunables / key.replace("/", ".")
        holder.write_text(value + "\n")
        binds.append(f"mount --bind {holder} /proc/sys/{key}")
    setup = " && ".join(
        [
            "mount -t tmpfs -o mode=0755 devcluster-run /run",
            f"mount --bind {node_dir / 'varlog'} /var/log",
            f"mount --bind {node_dir / 'varlib'} /var/lib",
            *binds,
        ]
    )
    result = subprocess.run(
        ["unshare", f"--mount={mntns}", "--propagation", "private", "sh", "-ec", setup],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"creating the node's mount namespace failed: {result.stderr.strip()}")


def _wait_for_socket(path: Path, process: subprocess.Popen[bytes], state_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ClusterError(
                f"containerd exited with code {process.returncode}; its log ends with:\n"
                + _log_tail(state_dir, "containerd")
            )
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"containerd did not open {path} within {timeout:.0f} s")
        time.sleep(0.05)


def _import_images(node: NodeToolchain, real: RealNode, directory: Path) -> None:
    for name, data in (
        ("pause.tar", images.build_pause_image(node.pause)),
        ("testapp.tar", images.build_testapp_image(node.busybox)),
    ):
        tarball = directory / name
        tarball.write_bytes(data)
        result = subprocess.run(
            [*ctr_argv(node, real), "images", "import", str(tarball)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"ctr images import {name} failed: {result.stderr.strip()}")


def ctr_argv(node: NodeToolchain, real: RealNode) -> list[str]:
    """`ctr` against this node's containerd (run in its mount namespace, where the socket is)."""
    return [
        "nsenter",
        f"--mount={real.mntns}",
        "--",
        str(node.ctr),
        "--address",
        real.containerd_socket,
        "-n",
        "k8s.io",
    ]


def _kubelet_argv(state: ClusterState, node: NodeToolchain, real: RealNode) -> list[str]:
    port, healthz_port = free_loopback_ports(2)
    # Its default, seen inside the namespace (node/varlib/kubelet on the host): the kubelet makes unix
    # sockets there, and under a deep state dir their paths would pass the 104-byte limit.
    root = KUBELET_ROOT
    return [
        str(node.kubelet),
        f"--kubeconfig={state.kubeconfig}",
        f"--hostname-override={real.name}",
        f"--root-dir={root}",
        f"--cert-dir={root / 'pki'}",
        f"--volume-plugin-dir={root / 'volume-plugins'}",
        "--container-runtime=remote",
        f"--container-runtime-endpoint=unix://{real.containerd_socket}",
        f"--pod-infra-container-image={images.PAUSE_IMAGE}",
        "--address=127.0.0.1",
        f"--port={port}",
        "--healthz-bind-address=127.0.0.1",
        f"--healthz-port={healthz_port}",
        "--read-only-port=0",
        "--cgroup-driver=cgroupfs",
        f"--cgroup-root={real.cgroup_root}",
        "--fail-swap-on=false",
        "--make-iptables-util-chains=false",
        f"--cluster-dns={CLUSTER_DNS}",
        "--cluster-domain=cluster.local",
        # a freshly registered node is otherwise NotReady until the next 10 s status update
        "--node-status-update-frequency=1s",
        # kubelet 1.20 marks a container with a startup probe (and no readiness probe) Ready only at
        # the pod's next periodic sync, not when the probe succeeds: 1 minute by default
        "--sync-frequency=5s",
        "--kube-api-qps=50",
        "--kube-api-burst=100",
        "--event-qps=50",
        "--event-burst=100",
        # the local images cannot be pulled again: never garbage-collect them, never evict for disk
        "--image-gc-high-threshold=100",
        "--image-gc-low-threshold=99",
        "--eviction-hard=memory.available<1Mi,nodefs.available<1%,imagefs.available<1%",
        "--serialize-image-pulls=false",
        "--v=1",
    ]


def _wait_node_ready(
    state: ClusterState, real: RealNode, kubelet: subprocess.Popen[bytes], timeout: float
) -> None:
    rest = KubeRest(state.server, state.token)
    deadline = time.monotonic() + timeout
    while True:
        if kubelet.poll() is not None:
            raise ClusterError(
                f"kubelet exited with code {kubelet.returncode}; its log ends with:\n"
                + _log_tail(state.state_dir, "kubelet")
            )
        status, body = rest.get(f"/api/v1/nodes/{real.name}")
        if status == 200 and _is_ready(body):
            if _lift_not_ready_taint(rest, body):
                return
            continue
        if time.monotonic() > deadline:
            raise ClusterError(
                f"node {real.name} not Ready within {timeout:.0f} s; see {state.state_dir}/logs/kubelet.log"
            )
        time.sleep(0.1)


def _is_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _lift_not_ready_taint(rest: KubeRest, node: dict[str, Any]) -> bool:
    """Remove the registration taint (devcluster runs no node lifecycle controller). False: retry."""
    taints = node.get("spec", {}).get("taints") or []
    kept = [t for t in taints if t.get("key") != NOT_READY_TAINT]
    if len(kept) == len(taints):
        return True
    patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": {"taints": kept}}
    status, body = rest.request(
        "PATCH", f"/api/v1/nodes/{node['metadata']['name']}", patch, "application/merge-patch+json"
    )
    if status == 409:
        return False
    if status != 200:
        raise ClusterError(f"lifting the {NOT_READY_TAINT} taint failed: HTTP {status} {body}")
    return True


# ---------------------------------------------------------------------------------------------------
# The machine's list of real nodes: what a killed `up` or test run left behind is cleaned up by the next
# real `up` (its daemons die with pytest, but the containers, the namespace, cgroups and bridge stay).


def _registry() -> Path:
    return cache_root() / "realnodes"


def _remember(real: RealNode) -> None:
    _registry().mkdir(parents=True, exist_ok=True)
    entry = _registry() / (Path(real.node_dir).parent.name + "-" + real.bridge + ".json")
    partial = entry.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(real)))
    partial.replace(entry)


def _forget(real: RealNode) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_registry() / (Path(real.node_dir).parent.name + "-" + real.bridge + ".json")).unlink()


def sweep_abandoned_nodes(progress: Callable[[str], None] | None = None) -> list[str]:
    """Tear down real nodes whose daemons are all gone (their `up` or test run was killed)."""
    swept = []
    for entry in sorted(_registry().glob("*.json")) if _registry().is_dir() else []:
        try:
            real = RealNode(**json.loads(entry.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        alive = [n for n, pid in real.pids.items() if pid_is_running(pid, real.binaries.get(n))]
        starting = not real.pids and time.time() - entry.stat().st_mtime < ABANDONED_AFTER_S
        if alive or starting:
            continue
        if progress is not None:
            progress(
                f"devcluster: cleaning up an abandoned real node ({real.node_dir}, bridge {real.bridge})"
            )
        _stop_node(real, STOP_GRACE_S)
        _forget(real)
        swept.append(real.node_dir)
    return swept


# ---------------------------------------------------------------------------------------------------
# Stop


def stop_real_node(state: ClusterState, grace: float = STOP_GRACE_S) -> list[int]:
    """Stop the node's processes by PID, then every container and shim of this node; undo host state."""
    real = RealNode.from_state(state)
    if real is None:
        return []
    stopped = _stop_node(real, grace)
    _forget(real)
    return stopped


def _stop_node(real: RealNode, grace: float) -> list[int]:
    stopped = []
    for component in reversed(NODE_COMPONENTS):
        pid = real.pids.get(component)
        if pid is None or not pid_is_running(pid, real.binaries.get(component)):
            continue
        if component == "containerd":
            # Containers first (they belong to this node's cgroup root), so the shims can report them.
            stopped += _kill_all(lambda: _pids_in_cgroup(real.cgroup_root), "container")
        _terminate(pid, component, grace)
        stopped.append(pid)
    stopped += _kill_all(lambda: _pids_in_cgroup(real.cgroup_root), "container")
    stopped += _kill_all(lambda: _pids_in_mount_namespace(real.mntns), "shim")
    _remove_mount_namespace(real.mntns)
    _remove_cgroup_root(real.cgroup_root)
    _ip("link", "del", real.bridge, check=False)
    return stopped


def _terminate(pid: int, name: str, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone([pid], grace):
        return
    logger.warning("%s (pid %d) ignored SIGTERM for %.0f s; sending SIGKILL", name, pid, grace)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone([pid], 5.0):
        raise ClusterError(f"{name} (pid {pid}) survived SIGKILL")


def _kill_all(find: Callable[[], set[int]], what: str) -> list[int]:
    """SIGKILL every PID ``find`` returns until it returns none (processes of ours by construction)."""
    killed: set[int] = set()
    deadline = time.monotonic() + 15.0
    while pids := find() - {os.getpid()}:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        _wait_gone(list(pids), 2.0)
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} processes {sorted(pids)} survive SIGKILL")
    return sorted(killed)


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_is_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _cgroup_dirs(cgroup_root: str) -> list[Path]:
    """Every cgroup directory of ``cgroup_root`` in every hierarchy, deepest first."""
    found = []
    for hierarchy in _cgroup_hierarchies():
        top = hierarchy / cgroup_root.lstrip("/")
        if top.is_dir():
            found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _pids_in_cgroup(cgroup_root: str) -> set[int]:
    pids: set[int] = set()
    for directory in _cgroup_dirs(cgroup_root):
        with contextlib.suppress(OSError):
            pids |= {int(line) for line in (directory / "cgroup.procs").read_text().split()}
    return {pid for pid in pids if pid_is_running(pid)}


def _pids_in_mount_namespace(mntns: Path) -> set[int]:
    try:
        inode = os.stat(mntns).st_ino
        if inode == os.stat("/proc/self/ns/mnt").st_ino or not _is_nsfs(mntns):
            return set()
    except OSError:
        return set()
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "mnt").st_ino == inode:
                    pids.add(int(entry.name))
    return {pid for pid in pids if pid_is_running(pid)}


def _is_nsfs(path: Path) -> bool:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return fields[fields.index("-") + 1] == "nsfs"
    return False


def _remove_mount_namespace(mntns: Path) -> None:
    if _is_nsfs(mntns):
        result = subprocess.run(["umount", str(mntns)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"umount {mntns} failed: {result.stderr.strip()}")


def _remove_cgroup_root(cgroup_root: str) -> None:
    deadline = time.monotonic() + 10.0
    for directory in _cgroup_dirs(cgroup_root):
        while True:
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as error:  # EBUSY while the kernel finishes tearing down an exited task
                if time.monotonic() > deadline:
                    raise ClusterError(f"cannot remove cgroup {directory}: {error}") from error
                time.sleep(0.05)


def host_leftovers(state_dir: Path) -> list[str]:
    """What a stopped node of ``state_dir`` could have left on the host (empty when clean)."""
    ident = node_id(state_dir)
    found = [str(d) for d in _cgroup_dirs(f"/octo-node-{ident}")]
    if Path(f"/sys/class/net/octo{ident}").exists():
        found.append(f"bridge octo{ident}")
    node_dir = str((state_dir / NODE_DIR).resolve())
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4].startswith(node_dir):
            found.append(f"mount {line.split()[4]}")
    return found
