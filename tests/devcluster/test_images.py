"""The node's local images: valid OCI layouts, named for `ctr images import`, reproducible; the testapp
entrypoint does what its commands say (run here with the host's shell tools)."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from octo_devtools.devcluster import images


def members(tar_bytes: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        return {m.name: m for m in archive.getmembers()}


def read(tar_bytes: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        member = archive.extractfile(name)
        assert member is not None
        return member.read()


@pytest.fixture
def busybox(tmp_path: Path) -> Path:
    """A stand-in with busybox's `--list-full` contract (the real one is in the cache after prepare)."""
    script = tmp_path / "busybox"
    script.write_text("#!/bin/sh\nprintf 'bin/busybox\\nbin/sh\\nusr/sbin/httpd\\nbin/dd\\n'\n")
    script.chmod(0o755)
    return script


def test_testapp_image_is_an_oci_layout_named_for_ctr(busybox: Path) -> None:
    layout = images.build_testapp_image(busybox)

    index = json.loads(read(layout, "index.json"))
    (descriptor,) = index["manifests"]
    assert (
        descriptor["annotations"]["io.containerd.image.name"]
        == images.TEST_IMAGE
        == "localhost/octo-testapp:1.0"
    )
    assert descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest = json.loads(read(layout, "blobs/sha256/" + descriptor["digest"].split(":")[1]))
    config = json.loads(read(layout, "blobs/sha256/" + manifest["config"]["digest"].split(":")[1]))
    layer = read(layout, "blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1])
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/testapp"]
    assert config["config"]["Cmd"] == ["serve"]
    files = members(layer)
    assert files["usr/local/bin/testapp"].mode == 0o755
    assert files["bin/sh"].issym()
    assert files["bin/sh"].linkname == "/bin/busybox"
    assert files["usr/sbin/httpd"].linkname == "/bin/busybox"
    assert files["bin/busybox"].isfile()
    assert files["tmp"].mode == 0o1777
    assert read(layer, "www/healthz") == b"ok\n"


def test_images_are_reproducible(busybox: Path, tmp_path: Path) -> None:
    pause = tmp_path / "pause"
    pause.write_bytes(b"\x7fELF pretend")
    assert images.build_testapp_image(busybox) == images.build_testapp_image(busybox)
    assert images.build_pause_image(pause) == images.build_pause_image(pause)
    index = json.loads(read(images.build_pause_image(pause), "index.json"))
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "localhost/pause:1.0"


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (["exit", "3"], 3, "testapp: exiting with code 3"),
        (["exit", "0"], 0, "testapp: exiting with code 0"),
        (["alloc", "4"], None, "testapp: allocated 4 MiB"),
        (["bogus"], 64, "testapp: unknown command: bogus"),
    ],
)
def test_testapp_commands(tmp_path: Path, args: list[str], code: int | None, output: str) -> None:
    script = tmp_path / "testapp"
    script.write_text(images.TESTAPP_SCRIPT)
    if code is None:  # alloc idles after allocating: stop it once it said so
        with subprocess.Popen(["sh", str(script), *args], stdout=subprocess.PIPE, text=True) as process:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(2)]
            process.kill()
        assert output + "\n" in lines
        return
    result = subprocess.run(
        ["sh", str(script), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == code
    assert output in result.stdout + result.stderr
