"""`devcluster prepare` around the build script: lock, progress lines, build-once, error tail.

The real build takes about 8 minutes, so a stand-in script with the same contract (OUT_DIR argument,
`devcluster:` step lines, binaries in OUT_DIR) is used here; the real one runs in scripts/bootstrap.
"""

import threading
from pathlib import Path

import pytest

from octo_devtools.devcluster import prepare as prepare_module
from octo_devtools.devcluster.paths import CACHE_ENV_VAR, Toolchain
from octo_devtools.devcluster.prepare import PrepareError, ensure_control_plane

FAKE_BUILD = """#!/bin/bash
set -euo pipefail
echo "run" >> "{runs}"
echo "W: apt chatter that is not a step"
echo "devcluster: [00:00:00] compiling"
sleep 0.8
mkdir -p "$1"
for b in etcd kube-apiserver kube-controller-manager kubelet kube-scheduler pause \\
    node-root/usr/bin/containerd node-root/usr/bin/containerd-shim-runc-v2 node-root/usr/bin/ctr \\
    node-root/usr/sbin/runc node-root/usr/lib/cni/bridge node-root/usr/lib/cni/host-local \\
    node-root/usr/lib/cni/loopback node-root/bin/busybox; do
  mkdir -p "$(dirname "$1/$b")"; printf '#!/bin/sh\\n' > "$1/$b"; chmod +x "$1/$b"
done
echo "devcluster: [00:00:01] built"
"""


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs.txt"
    script = tmp_path / "build.sh"
    script.write_text(FAKE_BUILD.format(runs=runs))
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(prepare_module, "BUILD_SCRIPT", script)
    monkeypatch.setattr(prepare_module, "PROGRESS_INTERVAL_S", 0.3)
    return runs


def test_build_streams_steps_and_periodic_progress(fake_build: Path) -> None:
    lines: list[str] = []
    ensure_control_plane(lines.append)
    steps = [line for line in lines if line.startswith("devcluster: [")]
    assert steps == ["devcluster: [00:00:00] compiling", "devcluster: [00:00:01] built"]
    assert any(line.startswith("devcluster: still compiling… ") for line in lines), lines
    assert not any("apt chatter" in line for line in lines)
    assert Toolchain.from_cache().kube_apiserver.is_file()


def test_concurrent_prepares_build_once(fake_build: Path) -> None:
    outputs: list[list[str]] = [[], []]
    threads = [threading.Thread(target=ensure_control_plane, args=(out.append,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake_build.read_text().splitlines() == ["run"]
    ensure_control_plane(lambda line: None)  # cached now: no third run
    assert fake_build.read_text().splitlines() == ["run"]


def test_failed_build_reports_the_output_tail(
    fake_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/bin/bash\necho 'E: Unable to locate package golang-1.19-go'\nexit 100\n")
    monkeypatch.setattr(prepare_module, "BUILD_SCRIPT", broken)
    with pytest.raises(PrepareError, match=r"(?s)exit code 100.*Unable to locate package golang-1\.19-go"):
        ensure_control_plane(lambda line: None)
