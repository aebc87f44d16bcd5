"""build-k8s.sh decides what to build: one `make` for every missing Go target, pinned node packages.

The real script runs here with apt-get, dpkg, make and go replaced by recording stand-ins on PATH (the
real 14-minute build runs in scripts/bootstrap); what is checked is the script's own logic: which
targets go into the one make, with which flags, which packages at which versions are fetched, and that
cached binaries are left alone.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from octo_devtools.devcluster import prepare as prepare_module
from octo_devtools.devcluster.paths import CACHE_ENV_VAR, NodeToolchain, Toolchain, k8s_bin_dir

ALL_TARGETS = "cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet"
NODE_PACKAGES = (
    "containerd=1.6.20~ds1-1+deb12u3",
    "runc=1.1.5+ds1-1+deb12u1",
    "containernetworking-plugins=1.1.1+ds1-3+b5",
    "busybox-static=1:1.35.0-4+deb12u1+b1",
)

APT_GET = r"""#!/bin/bash
echo "apt-get $*" >> "$STUB_LOG"
sub=""; pkgs=(); skip=0
for a in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case "$a" in
    -o) skip=1 ;;
    -*) ;;
    update|download|source) sub=$a ;;
    *) pkgs+=("$a") ;;
  esac
done
case "$sub" in
  download) for p in "${pkgs[@]}"; do touch "${p%%=*}.deb"; done ;;
  source)
    mkdir -p kubernetes-1.20.2/vendor/github.com/modern-go/reflect2
    echo old > kubernetes-1.20.2/vendor/github.com/modern-go/reflect2/old.go
    tar czf kubernetes_1.20.5+really1.20.2.orig.tar.gz kubernetes-1.20.2 && rm -rf kubernetes-1.20.2 ;;
esac
"""

DPKG = r"""#!/bin/bash
[ "$1" = -x ] || exit 2
name=$(basename "$2" .deb); dest=$3
mk() {
  mkdir -p "$(dirname "$dest/$1")"
  printf '#!/bin/sh\necho "%s Kubernetes v1.20.2"\n' "$1" > "$dest/$1"; chmod +x "$dest/$1"
}
case "$name" in
  etcd-server) mk usr/bin/etcd ;;
  rsync) mk usr/bin/rsync ;;
  golang-github-modern-go-reflect2-dev) mk usr/share/gocode/src/github.com/modern-go/reflect2/r.go
    mk usr/share/gocode/src/github.com/modern-go/reflect2/r.s ;;
  golang-1.19-go) mkdir -p "$dest/usr/lib/go-1.19/bin"
    cp "$(dirname "$0")/go" "$dest/usr/lib/go-1.19/bin/go" ;;
  containerd) mk usr/bin/containerd; mk usr/bin/containerd-shim-runc-v2; mk usr/bin/ctr ;;
  runc) mk usr/sbin/runc ;;
  containernetworking-plugins) mk usr/lib/cni/bridge; mk usr/lib/cni/host-local; mk usr/lib/cni/loopback ;;
  busybox-static) mk bin/busybox ;;
esac
"""

GO = r"""#!/bin/bash
echo "go $*" >> "$STUB_LOG"
while [ $# -gt 0 ]; do
  [ "$1" = -o ] && { printf '#!/bin/sh\n' > "$2"; chmod +x "$2"; }
  shift
done
"""

MAKE = r"""#!/bin/bash
echo "make $*" >> "$STUB_LOG"
for a in "$@"; do case "$a" in WHAT=*) what=${a#WHAT=} ;; esac; done
mkdir -p _output/bin
for t in $what; do
  printf '#!/bin/sh\necho "%s Kubernetes v1.20.2"\n' "${t#cmd/}" > "_output/bin/${t#cmd/}"
  chmod +x "_output/bin/${t#cmd/}"
done
"""


@pytest.fixture
def stubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, text in (("apt-get", APT_GET), ("dpkg", DPKG), ("make", MAKE), ("go", GO)):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setenv("STUB_LOG", str(log))
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    return log


def run_script() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(prepare_module.BUILD_SCRIPT), str(k8s_bin_dir())],
        capture_output=True,
        text=True,
        check=True,
    )


def calls(log: Path, command: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(command + " ")]


def test_cold_cache_builds_all_four_targets_in_one_make_and_unpacks_pinned_node_packages(
    stubbed: Path,
) -> None:
    run_script()

    makes = calls(stubbed, "make")
    assert len(makes) == 1, makes
    assert f"WHAT={ALL_TARGETS}" in makes[0]
    assert "GOFLAGS=-tags=dockerless" in makes[0]
    downloads = " ".join(calls(stubbed, "apt-get"))
    for package in NODE_PACKAGES:
        assert package in downloads
    assert Toolchain.from_cache().missing() == [
        Toolchain.from_cache().helm,
        Toolchain.from_cache().helm3,
        Toolchain.from_cache().kubectl,
    ]
    assert NodeToolchain.from_cache().missing() == []
    assert (k8s_bin_dir() / "node-root" / ".pinned").read_text().split() == list(NODE_PACKAGES)


def test_cached_control_plane_gets_only_kubelet_scheduler_and_node_added(stubbed: Path) -> None:
    out = k8s_bin_dir()
    out.mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager", "etcd"):
        (out / name).write_text("#!/bin/sh\necho cached Kubernetes v1.20.2\n")
        (out / name).chmod(0o755)

    run_script()

    makes = calls(stubbed, "make")
    assert len(makes) == 1, makes
    assert "WHAT=cmd/kube-scheduler cmd/kubelet " in makes[0] + " ", makes
    assert "etcd-server" not in " ".join(calls(stubbed, "apt-get"))
    assert (out / "kube-apiserver").read_text() == "#!/bin/sh\necho cached Kubernetes v1.20.2\n"
    assert NodeToolchain.from_cache().missing() == []


def test_complete_cache_exits_at_once(stubbed: Path) -> None:
    run_script()
    stubbed.write_text("")

    result = run_script()

    assert "control plane and node cached" in result.stdout
    assert stubbed.read_text() == ""


def test_changed_pins_unpack_the_node_packages_again_without_compiling(stubbed: Path) -> None:
    run_script()
    (k8s_bin_dir() / "node-root" / ".pinned").write_text("containerd=1.6.0\n")
    stubbed.write_text("")

    run_script()

    assert calls(stubbed, "make") == []
    assert any("download" in line and "containerd=" in line for line in calls(stubbed, "apt-get"))
