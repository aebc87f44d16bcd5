"""`up` / `down` / environment, shared by the CLI and the pytest plugin (one code path for both)."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from octo_devtools.devcluster import kind, realnode
from octo_devtools.devcluster.controlplane import (
    ClusterError,
    ClusterState,
    cluster_env,
    cluster_is_healthy,
    pid_is_running,
    remove_state,
    start_local_cluster,
    stop_cluster,
    tool_path_dirs,
)
from octo_devtools.devcluster.paths import NodeToolchain, Toolchain
from octo_devtools.devcluster.prepare import ensure_tools, prepare

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
NodeKind = Literal["fake", "real"]


@dataclass(frozen=True)
class UpResult:
    state: ClusterState
    toolchain: Toolchain
    reused: bool


def up(
    state_dir: Path,
    progress: Progress,
    *,
    use_kind: bool = False,
    die_with_parent: bool = False,
    node: NodeKind = "fake",
) -> UpResult:
    """Reuse the cluster recorded in ``state_dir`` if it is healthy and has the wanted node kind,
    otherwise start a fresh one. ``node="real"`` adds containerd, kubelet and kube-scheduler."""
    state_dir = state_dir.expanduser().resolve()
    existing = ClusterState.load(state_dir)
    if use_kind:
        ensure_tools(progress)
        if existing is not None and existing.mode == "local":
            raise ClusterError(f"{state_dir} holds a running local cluster; `devcluster down` it first")
        return UpResult(kind.up(state_dir, progress), Toolchain.from_cache(), reused=False)
    if existing is not None:
        if existing.mode == "kind":
            raise ClusterError(f"{state_dir} holds a kind cluster; `devcluster down` it first")
        if existing.node == node and is_healthy(existing):
            progress(f"devcluster: reusing the running cluster at {existing.server}")
            return UpResult(existing, Toolchain.from_cache(), reused=True)
        if existing.node != node and is_healthy(existing):
            progress(f"devcluster: the running cluster has a {existing.node} node; replacing it")
        else:
            progress("devcluster: the recorded cluster is not healthy; stopping what is left of it")
        stop_all(existing)
        remove_state(state_dir)
    toolchain = prepare(progress)
    state = start_local_cluster(
        state_dir,
        toolchain,
        die_with_parent=die_with_parent,
        progress=progress,
        service_account_tokens=node == "real",
    )
    if node == "real":
        state.node = "real"
        state.save()
        try:
            realnode.start_real_node(
                state, NodeToolchain.from_cache(), die_with_parent=die_with_parent, progress=progress
            )
        except BaseException:
            stop_all(state)
            raise
    return UpResult(state, toolchain, reused=False)


def is_healthy(state: ClusterState) -> bool:
    if not cluster_is_healthy(state):
        return False
    node = realnode.RealNode.from_state(state)
    if state.node == "real" and node is None:
        return False
    return node is None or (
        all(pid_is_running(pid, node.binaries.get(name)) for name, pid in node.pids.items())
        and set(node.pids) == set(realnode.NODE_COMPONENTS)
    )


def stop_all(state: ClusterState) -> list[int]:
    """The real node first (its kubelet still talks to the apiserver), then the control plane."""
    return realnode.stop_real_node(state) + stop_cluster(state)


def down(state_dir: Path, progress: Progress) -> list[int]:
    """Stop exactly the recorded processes (or delete the kind cluster); remove the state."""
    state_dir = state_dir.expanduser().resolve()
    state = ClusterState.load(state_dir)
    if state is None:
        progress(f"devcluster: no cluster recorded in {state_dir}")
        return []
    if state.mode == "kind":
        kind.down(progress)
        stopped: list[int] = []
    else:
        stopped = stop_all(state)
        progress(f"devcluster: stopped pids {' '.join(map(str, stopped)) or '(none were running)'}")
    remove_state(state_dir)
    return stopped


def environment(state: ClusterState, toolchain: Toolchain) -> dict[str, str]:
    return cluster_env(state, toolchain)


def shell_exports(state: ClusterState, toolchain: Toolchain) -> str:
    """Lines for `eval "$(devcluster env)"`; the token stays in the kubeconfig, never printed."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in environment(state, toolchain).items()]
    path_prefix = ":".join(shlex.quote(d) for d in tool_path_dirs(toolchain))
    lines.insert(1, f'export PATH={path_prefix}:"$PATH"')
    return "\n".join(lines)
