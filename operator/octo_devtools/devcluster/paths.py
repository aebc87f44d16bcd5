"""Where the cached binaries and the default cluster state live."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

K8S_VERSION = "1.20.2"
CACHE_ENV_VAR = "COMMUNICATION_OPERATOR_CACHE"


def cache_root() -> Path:
    """The cache root (``$COMMUNICATION_OPERATOR_CACHE`` or ``~/.cache/communication-operator``)."""
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    return Path.home() / ".cache" / "communication-operator"


def k8s_bin_dir() -> Path:
    return cache_root() / f"k8s-{K8S_VERSION}"


def k8s_build_lock() -> Path:
    # The same file the bootstrap build uses with flock(1), so a shell build and `devcluster prepare`
    # never compile at the same time.
    return cache_root() / f"k8s-{K8S_VERSION}.lock"


def tools_dir() -> Path:
    return cache_root() / "tools"


def default_state_dir() -> Path:
    return cache_root() / "devcluster"


@dataclass(frozen=True)
class Toolchain:
    """Absolute paths of every binary the local cluster and the tests use."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    helm: Path
    helm3: Path
    kubectl: Path

    @classmethod
    def from_cache(cls) -> Toolchain:
        k8s = k8s_bin_dir()
        tools = tools_dir()
        return cls(
            etcd=k8s / "etcd",
            kube_apiserver=k8s / "kube-apiserver",
            kube_controller_manager=k8s / "kube-controller-manager",
            helm=tools / "helm-4.3.1" / "helm",
            helm3=tools / "helm-3.19.0" / "helm",
            kubectl=tools / "kubectl-1.37.1" / "kubectl",
        )

    def missing(self) -> list[Path]:
        return _missing_executables(vars(self).values())


@dataclass(frozen=True)
class NodeToolchain:
    """The real node's binaries: kubelet and kube-scheduler (built), and Debian's runtime (unpacked)."""

    kubelet: Path
    kube_scheduler: Path
    containerd: Path
    containerd_shim: Path
    ctr: Path
    runc: Path
    cni_bridge: Path
    cni_host_local: Path
    cni_loopback: Path
    busybox: Path
    pause: Path

    @property
    def cni_bin_dir(self) -> Path:
        return self.cni_bridge.parent

    @classmethod
    def from_cache(cls) -> NodeToolchain:
        k8s = k8s_bin_dir()
        root = node_root_dir()
        cni = root / "usr" / "lib" / "cni"
        return cls(
            kubelet=k8s / "kubelet",
            kube_scheduler=k8s / "kube-scheduler",
            containerd=root / "usr" / "bin" / "containerd",
            containerd_shim=root / "usr" / "bin" / "containerd-shim-runc-v2",
            ctr=root / "usr" / "bin" / "ctr",
            runc=root / "usr" / "sbin" / "runc",
            cni_bridge=cni / "bridge",
            cni_host_local=cni / "host-local",
            cni_loopback=cni / "loopback",
            busybox=root / "bin" / "busybox",
            pause=k8s / "pause",
        )

    def missing(self) -> list[Path]:
        return _missing_executables(vars(self).values())


def node_root_dir() -> Path:
    """Debian's containerd, runc, CNI plugins and busybox, unpacked (`dpkg -x`), never installed."""
    return k8s_bin_dir() / "node-root"


def _missing_executables(paths: Iterable[Path]) -> list[Path]:
    return [p for p in paths if not (p.is_file() and os.access(p, os.X_OK))]
