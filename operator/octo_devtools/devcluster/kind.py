"""`devcluster up --kind`: a real cluster (real kubelet and scheduler) where Docker and kind exist."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from octo_devtools.devcluster.controlplane import KUBECONFIG_FILE, ClusterError, ClusterState

CLUSTER_NAME = "communication-operator"


def _require(binary: str, hint: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise ClusterError(f"`{binary}` is not on PATH; devcluster up --kind needs it ({hint})")
    return path


def _run(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout


def up(state_dir: Path, progress: Callable[[str], None]) -> ClusterState:
    docker = _require("docker", "install Docker Engine")
    kind = _require("kind", "see https://kind.sigs.k8s.io/docs/user/quick-start/#installation")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        raise ClusterError(f"docker is installed but its engine is not reachable: {info.stderr.strip()}")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    kubeconfig = state_dir / KUBECONFIG_FILE
    if CLUSTER_NAME in _run([kind, "get", "clusters"], "kind get clusters").split():
        progress(f"devcluster: reusing kind cluster {CLUSTER_NAME}")
        _run(
            [kind, "export", "kubeconfig", "--name", CLUSTER_NAME, "--kubeconfig", str(kubeconfig)],
            "kind export kubeconfig",
        )
    else:
        progress(f"devcluster: creating kind cluster {CLUSTER_NAME} (this pulls the node image once)")
        _run(
            [
                kind,
                "create",
                "cluster",
                "--name",
                CLUSTER_NAME,
                "--wait",
                "120s",
                "--kubeconfig",
                str(kubeconfig),
            ],
            "kind create cluster",
        )
    config = yaml.safe_load(kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    state = ClusterState(mode="kind", state_dir=state_dir, server=server, token="", kubeconfig=kubeconfig)
    state.save()
    return state


def down(progress: Callable[[str], None]) -> None:
    kind = _require("kind", "it created this cluster")
    _run([kind, "delete", "cluster", "--name", CLUSTER_NAME], "kind delete cluster")
    progress(f"devcluster: deleted kind cluster {CLUSTER_NAME}")
