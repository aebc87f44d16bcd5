"""Local container images for the real node, built without a registry or Docker.

Each image is an OCI image layout tarball with one uncompressed layer, named through the index
annotation ``io.containerd.image.name`` so `ctr images import` gives it its reference. Tags are never
``latest``: the kubelet then defaults to ``imagePullPolicy: IfNotPresent`` and uses the imported copy.

- ``PAUSE_IMAGE``: the sandbox image (the static pause binary build-k8s.sh makes with Debian's Go).
- ``TEST_IMAGE``: Debian's static busybox with one symlink per applet and ``/usr/local/bin/testapp``,
  which serves HTTP, exits with a code, crashes, or allocates memory on command (see TESTAPP_SCRIPT).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

PAUSE_IMAGE = "localhost/pause:1.0"
TEST_IMAGE = "localhost/octo-testapp:1.0"
TESTAPP_PORT = 8080
_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Every layer entry gets this mtime so the same inputs give the same digests.
_EPOCH = 0

TESTAPP_SCRIPT = """#!/bin/sh
# octo-testapp: what a real-node test asks a container to do (the image's entrypoint).
#   serve [PORT]           HTTP on PORT (default 8080): / and /healthz answer 200
#   exit CODE [SECONDS]    run SECONDS (default 0), then exit with CODE (saying $TESTAPP_MESSAGE, if set)
#   crash [SECONDS]        serve for SECONDS (default 1), then die with a fatal error (exit 1)
#   alloc MIB              allocate and touch MIB MiB in one buffer, then idle (over the limit: OOMKilled)
#   sleep                  idle until killed
cmd=${1:-serve}
[ $# -gt 0 ] && shift
case "$cmd" in
  serve)
    echo "testapp: serving HTTP on port ${1:-8080}"
    exec httpd -f -v -p "${1:-8080}" -h /www ;;
  exit)
    sleep "${2:-0}"
    echo "testapp: exiting with code ${1:-0}${TESTAPP_MESSAGE:+: $TESTAPP_MESSAGE}"
    exit "${1:-0}" ;;
  crash)
    httpd -f -p 8080 -h /www &
    sleep "${1:-1}"
    echo "testapp: fatal: simulated crash" >&2
    exit 1 ;;
  alloc)
    # A short pause first: runc registers the OOM notification only after the process starts, and an
    # allocation in the first instant can beat it (then the kubelet says Error, not OOMKilled).
    sleep 1
    echo "testapp: allocating ${1:?alloc needs MiB} MiB"
    dd if=/dev/zero of=/dev/null bs="${1}M" count=1 || exit $?
    echo "testapp: allocated ${1} MiB"
    exec sleep 2147483647 ;;
  sleep)
    exec sleep 2147483647 ;;
  *)
    echo "testapp: unknown command: $cmd" >&2
    exit 64 ;;
esac
"""
INDEX_HTML = "<h1>octo-testapp ok</h1>\n"


@dataclass
class Layer:
    """Files, symlinks and directories of a single-layer image (paths are absolute in the image)."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)

    def add_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = (data, mode)

    def tar(self) -> bytes:
        entries: dict[str, tarfile.TarInfo] = {}
        payload: dict[str, bytes] = {}

        def add_dir(path: str, mode: int = 0o755) -> None:
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            if parent and parent not in entries:
                add_dir(parent)
            if path not in entries:
                entries[path] = _info(path, tarfile.DIRTYPE, mode)

        def add_parent(name: str) -> None:
            if "/" in name:
                add_dir(name.rsplit("/", 1)[0])

        for path, mode in self.dirs.items():
            add_dir(path.strip("/"), mode)
        for path, (data, mode) in self.files.items():
            name = path.strip("/")
            add_parent(name)
            info = _info(name, tarfile.REGTYPE, mode)
            info.size = len(data)
            entries[name] = info
            payload[name] = data
        for path, target in self.symlinks.items():
            name = path.strip("/")
            if name in entries:
                continue
            add_parent(name)
            info = _info(name, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            entries[name] = info
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name in sorted(entries):
                info = entries[name]
                archive.addfile(info, io.BytesIO(payload[name]) if name in payload else None)
        return buffer.getvalue()


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = _EPOCH
    info.uid = info.gid = 0
    return info


def oci_layout(reference: str, layer: Layer, *, entrypoint: list[str], cmd: list[str] | None = None) -> bytes:
    """An OCI image layout tarball holding one image named ``reference``."""
    layer_tar = layer.tar()
    layer_digest = _digest(layer_tar)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "Cmd": cmd, "Env": [_PATH_ENV], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer_tar),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    index = oci_index(reference, manifest)
    out = Layer()
    out.add_file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    out.add_file("index.json", index)
    for blob in (layer_tar, config, manifest):
        out.add_file("blobs/sha256/" + _digest(blob).split(":", 1)[1], blob)
    return out.tar()


def oci_index(reference: str, manifest: bytes) -> bytes:
    """The ``index.json`` of an OCI layout with one amd64 image manifest, named as containerd imports it."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": reference,
                        "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[1],
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_pause_image(pause_binary: Path) -> bytes:
    layer = Layer()
    layer.add_file("/pause", pause_binary.read_bytes(), 0o755)
    return oci_layout(PAUSE_IMAGE, layer, entrypoint=["/pause"])


def build_testapp_image(busybox: Path) -> bytes:
    applets = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    layer = Layer()
    layer.add_file("/bin/busybox", busybox.read_bytes(), 0o755)
    for applet in applets:
        if applet != "bin/busybox":
            layer.symlinks["/" + applet] = "/bin/busybox"
    layer.add_file("/usr/local/bin/testapp", TESTAPP_SCRIPT.encode(), 0o755)
    layer.add_file("/www/index.html", INDEX_HTML.encode())
    layer.add_file("/www/healthz", b"ok\n")
    layer.add_file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    layer.add_file("/etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    layer.dirs["/tmp"] = 0o1777  # noqa: S108 - the image's own /tmp
    layer.dirs["/root"] = 0o700
    return oci_layout(TEST_IMAGE, layer, entrypoint=["/usr/local/bin/testapp"], cmd=["serve"])
