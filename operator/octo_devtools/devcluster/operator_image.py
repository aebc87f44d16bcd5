"""The operator's container image, built here without Docker (`devcluster operator-image`).

What the project's Dockerfile builds from ``python:3.11-slim-bookworm``, assembled by our own code
from Debian-built parts: Debian's Python 3.11 and its runtime libraries and ``tini`` (`apt-get
download` + `dpkg-deb -x`, nothing installed on the host), the project pip-installed into a venv
layout at ``/opt/venv``, and helm from the devcluster cache, checked by its pinned sha256. The result
is an OCI image layout tarball with one uncompressed layer and the Dockerfile's user, entrypoint,
command, environment, working directory and exposed ports (tests/devcluster/test_operator_image.py
checks these constants against the Dockerfile, so the two cannot drift).

The tarball is cached by a hash of every input (the project's sources, the package pins, the helm
digest and this recipe) under ``<cache>/operator-image/``: a second build with the same inputs is a
file lookup. `import_image` loads it into a real node's containerd, as the node's local images are.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from octo_devtools.devcluster.controlplane import ClusterError, ClusterState
from octo_devtools.devcluster.images import oci_index
from octo_devtools.devcluster.paths import NodeToolchain, cache_root
from octo_devtools.devcluster.prepare import PrepareError, file_lock, pinned_wheel_binaries

Progress = Callable[[str], None]

PROJECT_ROOT = Path(__file__).resolve().parents[3]
IMAGE_NAME = "localhost/communication-operator"
VERSION = "0.1.0"

# --- What the Dockerfile promises (its final stage); the Dockerfile test compares these to it. ------
OPERATOR_UID = 65532
USER = f"{OPERATOR_UID}:{OPERATOR_UID}"
ENTRYPOINT = ["tini", "--", "communication-operator"]
CMD = ["run"]
WORKDIR = "/tmp/operator"  # noqa: S108 - the image's writable dir (an emptyDir in the chart)
EXPOSED_PORTS = (8080, 9090)
# PATH of the python base image, which the Dockerfile's `PATH=/opt/venv/bin:$PATH` extends.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV = {
    "PATH": "/opt/venv/bin:" + BASE_PATH,
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "HOME": WORKDIR,
    "TMPDIR": WORKDIR,
    "HELM_CACHE_HOME": f"{WORKDIR}/helm/cache",
    "HELM_CONFIG_HOME": f"{WORKDIR}/helm/config",
    "HELM_DATA_HOME": f"{WORKDIR}/helm/data",
    "KUBECACHEDIR": f"{WORKDIR}/kube-cache",
    "OPERATOR__LOG__FORMAT": "json",
}
LABELS = {
    "org.opencontainers.image.title": "communication-operator",
    "org.opencontainers.image.description": "Connects a Kubernetes cluster to an OctoMesh Communication "
    "Controller and deploys its workloads with Helm",
    "org.opencontainers.image.version": VERSION,
    "org.opencontainers.image.licenses": "MIT",
}
TINI_PATH = "/usr/bin/tini"
HELM_PATH = "/usr/local/bin/helm"
VENV = "/opt/venv"
# The Dockerfile's helm pin (the official archive from get.helm.sh, which this machine cannot reach).
# The local image carries the cache's helm instead, pinned by the sha256 of the binary itself; the
# test fails when the Dockerfile's pin moves, so the two are revisited together.
DOCKERFILE_HELM_VERSION = "v4.2.4"
DOCKERFILE_HELM_SHA256_AMD64 = "c306b46f719b0a4da32d0f78ee21bf90ce8d602f15b22ab753f0674d1670a7f3"
IMAGE_HELM_VERSION = "v4.3.1"

# Debian bookworm: Debian's Python 3.11 (the Dockerfile's base has python.org's 3.11), the shared
# libraries its interpreter and the modules the operator imports need, and tini. Pinned by version.
DEBIAN_PACKAGES = {
    "python3.11-minimal": "3.11.2-6+deb12u8",
    "libpython3.11-minimal": "3.11.2-6+deb12u8",
    "libpython3.11-stdlib": "3.11.2-6+deb12u8",
    "libc6": "2.36-9+deb12u14",
    "libgcc-s1": "12.2.0-14+deb12u1",
    "libssl3": "3.0.20-1~deb12u2",
    "zlib1g": "1:1.2.13.dfsg-1",
    "libexpat1": "2.5.0-1+deb12u2",
    "libffi8": "3.4.4-1",
    "libbz2-1.0": "1.0.8-5+b1",
    "liblzma5": "5.4.1-1+deb12u1",
    "libuuid1": "2.38.1-5+deb12u3",
    "media-types": "10.0.0",
    "tini": "0.19.0-1+b3",
}
# Debian files the image does not need (documentation, the host's package state).
_DROPPED_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/lintian/", "usr/share/locale/")
_EPOCH = 0
# Cache clean-up: images are about 200 MB each.
KEPT_IMAGES = 4
STALE_AFTER_S = 24 * 3600.0
# Bump when the recipe changes in a way the hashed inputs do not show.
RECIPE_VERSION = "1"


@dataclass(frozen=True)
class BuiltImage:
    reference: str
    tarball: Path
    input_hash: str
    cached: bool


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def image_dir() -> Path:
    return cache_root() / "operator-image"


def _helm_binary() -> tuple[Path, str]:
    helm = next(b for b in pinned_wheel_binaries() if b.target.parent.name == "helm-4.3.1")
    return helm.target, helm.sha256


def _project_files() -> list[Path]:
    sources = [PROJECT_ROOT / "pyproject.toml", PROJECT_ROOT / "README.md"]
    for path in sorted((PROJECT_ROOT / "operator").rglob("*")):
        generated = any(part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)
        if path.is_file() and not generated and not path.name.endswith(".pyc"):
            sources.append(path)
    return sources


def input_hash() -> str:
    """A digest of everything the image is made from; equal hashes give the same image."""
    digest = hashlib.sha256()
    digest.update(f"recipe {RECIPE_VERSION}\n".encode())
    digest.update(json.dumps(DEBIAN_PACKAGES, sort_keys=True).encode())
    digest.update(_helm_binary()[1].encode())
    for path in _project_files():
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build_operator_image(progress: Progress = _stderr, *, force: bool = False) -> BuiltImage:
    """The image's OCI layout tarball: from the cache if its inputs are unchanged, else built."""
    started = time.monotonic()
    digest = input_hash()
    reference = f"{IMAGE_NAME}:{VERSION}-{digest[:12]}"
    tarball = image_dir() / f"{digest}.tar"
    if tarball.is_file() and not force:
        os.utime(tarball)  # in use: another worktree's clean-up keeps it
        progress(f"devcluster: operator image {reference} cached ({tarball})")
        return BuiltImage(reference, tarball, digest, cached=True)
    image_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=image_dir(), prefix="build.") as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        debs = _download_debs(progress)
        progress(f"devcluster: unpacking {len(debs)} Debian packages (python3.11, runtime libraries, tini)")
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(rootfs)], f"dpkg-deb -x {deb.name}")
        _prune(rootfs)
        progress("devcluster: pip-installing the project and its pinned dependencies into /opt/venv")
        _install_project(rootfs, Path(tmp))
        _add_helm(rootfs)
        _add_system_files(rootfs)
        progress("devcluster: checking the image's interpreter (communication-operator version in a chroot)")
        _smoke_test(rootfs)
        progress("devcluster: writing the OCI layout")
        partial = Path(tmp) / "image.tar"
        write_oci_layout(rootfs, reference, partial)
        partial.replace(tarball)
    _remove_stale_images(keep=tarball)
    size_mb = tarball.stat().st_size / 1e6
    progress(
        f"devcluster: operator image {reference} built in {time.monotonic() - started:.0f} s "
        f"({size_mb:.0f} MB)"
    )
    return BuiltImage(reference, tarball, digest, cached=False)


def _remove_stale_images(keep: Path) -> None:
    """Drop images no build has used for a day, and all but the newest few: the cache is shared by
    every checkout on the machine, each with its own sources (so its own image)."""
    images = sorted(image_dir().glob("*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    now = time.time()
    for index, old in enumerate(images):
        if old != keep and (index >= KEPT_IMAGES or now - old.stat().st_mtime > STALE_AFTER_S):
            old.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------
# Parts


def _run(argv: list[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise PrepareError(
            f"{what} failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()}"
        )
    return result  # type: ignore[no-any-return]


def _deb_name(package: str, version: str) -> str:
    # apt-get download names the file <package>_<version with ':' as %3a>_<arch>.deb
    return f"{package}_{version.replace(':', '%3a')}_"


def _download_debs(progress: Progress) -> list[Path]:
    """The pinned packages, from the cache or `apt-get download` (private apt lists, no host state)."""
    debs_dir = image_dir() / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)

    def cached(package: str, version: str) -> Path | None:
        return next(iter(sorted(debs_dir.glob(_deb_name(package, version) + "*.deb"))), None)

    with file_lock(image_dir() / "debs.lock", progress, "the operator image's Debian packages"):
        missing = [f"{p}={v}" for p, v in DEBIAN_PACKAGES.items() if cached(p, v) is None]
        if missing:
            progress(f"devcluster: downloading {len(missing)} Debian packages (apt-get download)")
            apt = _private_apt(debs_dir.parent / "apt")
            _run(["apt-get", *apt, "update", "-qq"], "apt-get update (private lists)")
            _run(["apt-get", *apt, "download", "-qq", *missing], "apt-get download", cwd=debs_dir)
    found = [cached(p, v) for p, v in DEBIAN_PACKAGES.items()]
    absent = [f"{p}={v}" for (p, v), path in zip(DEBIAN_PACKAGES.items(), found, strict=True) if path is None]
    if absent:
        raise PrepareError("apt-get download left these packages missing: " + ", ".join(absent))
    return [p for p in found if p is not None]


def _private_apt(state: Path) -> list[str]:
    """apt options for a sources list and package lists of our own (the machine's mirror, bookworm)."""
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    uri = _debian_mirror()
    sources = state / "sources.list"
    sources.write_text(f"deb {uri} bookworm main\n")
    return [
        "-o",
        f"Dir::Etc::SourceList={sources}",
        "-o",
        "Dir::Etc::SourceParts=/nonexistent",
        "-o",
        f"Dir::State::Lists={state / 'lists'}",
    ]


def _debian_mirror() -> str:
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.is_file():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    classic = Path("/etc/apt/sources.list")
    if classic.is_file():
        for line in classic.read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[0] == "deb":
                return fields[1]
    raise PrepareError("no Debian mirror found in /etc/apt")


def _prune(rootfs: Path) -> None:
    for prefix in _DROPPED_PREFIXES:
        shutil.rmtree(rootfs / prefix, ignore_errors=True)


def _install_project(rootfs: Path, workdir: Path) -> None:
    """The project with its pinned dependencies into a venv layout at /opt/venv (Debian's python3.11)."""
    # A copy of exactly the hashed sources: setuptools leaves build/ and *.egg-info in the tree it
    # builds, and a stale build/lib would put deleted modules into the wheel.
    source = workdir / "src"
    for path in _project_files():
        copy = source / path.relative_to(PROJECT_ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    venv = rootfs / VENV.lstrip("/")
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--target",
            str(site),
            str(source),
        ],
        "pip install --target (the project into /opt/venv)",
        env={**os.environ, "PIP_NO_CACHE_DIR": "0", "TMPDIR": str(workdir)},
    )
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the host's shebang
    (venv / "pyvenv.cfg").write_text(
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
    )
    bin_dir = venv / "bin"
    bin_dir.mkdir()
    for name in ("python", "python3", "python3.11"):
        (bin_dir / name).symlink_to("/usr/bin/python3.11")
    script = bin_dir / "communication-operator"
    script.write_text(
        f"#!{VENV}/bin/python3\n"
        "import sys\n"
        "from communication_operator.cli import main\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(main())\n"
    )
    script.chmod(0o755)
    # The root filesystem is read-only at run time: compile the standard library here, as pip did
    # for the site-packages (same bytecode magic: CPython 3.11).
    _run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "-d",
            "/usr/lib/python3.11",
            str(rootfs / "usr/lib/python3.11"),
        ],
        "compileall (the image's standard library)",
    )


def _add_helm(rootfs: Path) -> None:
    helm, pinned = _helm_binary()
    data = helm.read_bytes() if helm.is_file() else b""
    actual = hashlib.sha256(data).hexdigest()
    if actual != pinned:
        raise PrepareError(f"{helm}: sha256 {actual} is not the pinned {pinned}; run `devcluster prepare`")
    target = rootfs / HELM_PATH.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    target.chmod(0o755)


def _add_system_files(rootfs: Path) -> None:
    etc = rootfs / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"operator:x:{OPERATOR_UID}:{OPERATOR_UID}::{WORKDIR}:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\noperator:x:{OPERATOR_UID}:\n")
    (rootfs / WORKDIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    for mount_point in ("proc", "sys", "dev", "etc/ssl/certs"):
        (rootfs / mount_point).mkdir(parents=True, exist_ok=True)


def _smoke_test(rootfs: Path) -> None:
    """The image's own interpreter imports the operator and prints its version (a missing library
    fails here, not in the pod)."""
    result = _run(
        ["chroot", "--userspec", USER, str(rootfs), *ENTRYPOINT[2:], "version"],
        "communication-operator version in the image's chroot",
        env=ENV,
    )
    if VERSION not in result.stdout:
        raise PrepareError(f"communication-operator version printed {result.stdout.strip()!r}")
    _run(["chroot", "--userspec", USER, str(rootfs), TINI_PATH, "--version"], "tini --version in the chroot")


# ---------------------------------------------------------------------------------------------------
# The OCI layout


def image_config(diff_id: str) -> dict[str, object]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": USER,
            "Entrypoint": ENTRYPOINT,
            "Cmd": CMD,
            "Env": [f"{k}={v}" for k, v in ENV.items()],
            "WorkingDir": WORKDIR,
            "ExposedPorts": {f"{port}/tcp": {} for port in EXPOSED_PORTS},
            "Labels": LABELS,
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }


def _owner(relative: str) -> int:
    return OPERATOR_UID if relative == WORKDIR.lstrip("/") else 0


def _layer_entries(rootfs: Path) -> Iterable[tuple[str, Path]]:
    for directory, dirs, files in os.walk(rootfs):
        dirs.sort()
        base = Path(directory)
        for name in sorted([*dirs, *files]):
            path = base / name
            yield str(path.relative_to(rootfs)), path


def write_layer(rootfs: Path, out: Path) -> str:
    """One uncompressed layer of ``rootfs`` (owner root except the writable dir, mtime 0); its digest."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in _layer_entries(rootfs):
            stat = path.lstat()
            info = tarfile.TarInfo(name)
            info.mtime = _EPOCH
            info.uid = info.gid = _owner(name)
            info.mode = stat.st_mode & 0o7777
            if path.is_symlink():
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                archive.addfile(info)
            elif path.is_dir():
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.size = stat.st_size
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
    return "sha256:" + _file_sha256(out)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_oci_layout(rootfs: Path, reference: str, out: Path) -> None:
    layer = out.with_name("layer.tar")
    layer_digest = write_layer(rootfs, layer)
    config = json.dumps(image_config(layer_digest), sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": layer.stat().st_size,
                }
            ],
        },
        sort_keys=True,
    ).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = oci_index(reference, manifest)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:

        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _EPOCH
            archive.addfile(info, io.BytesIO(data))

        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes("index.json", index)
        for digest, data in ((config_digest, config), (manifest_digest, manifest)):
            add_bytes("blobs/sha256/" + digest.split(":", 1)[1], data)
        info = tarfile.TarInfo("blobs/sha256/" + layer_digest.split(":", 1)[1])
        info.size = layer.stat().st_size
        info.mtime = _EPOCH
        with layer.open("rb") as handle:
            archive.addfile(info, handle)
    layer.unlink()


def import_image(state: ClusterState, image: BuiltImage, progress: Progress = _stderr) -> None:
    """Load the image into the real node's containerd (namespace k8s.io), as the local images are."""
    from octo_devtools.devcluster.realnode import RealNode, ctr_argv

    real = RealNode.from_state(state)
    if real is None:
        raise ClusterError(f"{state.state_dir} has no real node to import the image into")
    started = time.monotonic()
    result = subprocess.run(
        [*ctr_argv(NodeToolchain.from_cache(), real), "images", "import", str(image.tarball)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"ctr images import {image.reference} failed: {result.stderr.strip()}")
    progress(
        f"devcluster: imported {image.reference} into the node's containerd "
        f"in {time.monotonic() - started:.1f} s"
    )
