"""`devcluster operator-image` against the Dockerfile: the image the local build script assembles must
keep every promise of the Dockerfile's final stage (user, entrypoint, command, environment, working
dir, exposed ports, labels, where tini, helm and the venv live) and track its helm pin, so the two
cannot drift apart. The built image itself is checked in tests/realnode/test_in_cluster.py."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import tarfile
import time
from pathlib import Path

import pytest

from octo_devtools.devcluster import operator_image
from tests.shipping.test_dockerfile import DOCKERFILE, Stage, parse_dockerfile, resolve


@pytest.fixture(scope="module")
def final_stage() -> tuple[dict[str, str], Stage]:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    final = stages[-1]
    args = dict(a.partition("=")[::2] for a in final.args_of("ARG"))
    return args, final


@pytest.fixture(scope="module")
def builder_args() -> dict[str, str]:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    return dict(a.partition("=")[::2] for a in stages[0].args_of("ARG"))


def test_user_entrypoint_command_and_workdir_match_the_dockerfile(
    final_stage: tuple[dict[str, str], Stage],
) -> None:
    _, final = final_stage
    assert final.args_of("USER")[-1] == operator_image.USER
    assert json.loads(final.args_of("ENTRYPOINT")[-1]) == operator_image.ENTRYPOINT
    assert json.loads(final.args_of("CMD")[-1]) == operator_image.CMD
    assert final.args_of("WORKDIR")[-1] == operator_image.WORKDIR


def test_environment_matches_the_dockerfile(final_stage: tuple[dict[str, str], Stage]) -> None:
    _, final = final_stage
    expected = {key: value.replace("$PATH", operator_image.BASE_PATH) for key, value in final.env().items()}
    assert expected == operator_image.ENV


def test_exposed_ports_and_labels_match_the_dockerfile(final_stage: tuple[dict[str, str], Stage]) -> None:
    args, final = final_stage
    exposed = [int(p.split("/")[0]) for e in final.args_of("EXPOSE") for p in e.split()]
    assert tuple(exposed) == operator_image.EXPOSED_PORTS
    labels = dict(t.partition("=")[::2] for e in final.args_of("LABEL") for t in shlex.split(e))
    assert {k: resolve(v, args) for k, v in labels.items()} == operator_image.LABELS


def test_tini_helm_and_the_venv_are_where_the_dockerfile_puts_them(
    final_stage: tuple[dict[str, str], Stage],
) -> None:
    _, final = final_stage
    copied_to = {c.split()[-1] for c in final.args_of("COPY")}
    assert {operator_image.TINI_PATH, operator_image.HELM_PATH, operator_image.VENV} <= copied_to
    # The user's home (and every writable path) is the working dir the chart mounts an emptyDir on.
    runs = " ".join(final.args_of("RUN"))
    assert f"--uid {operator_image.OPERATOR_UID}" in runs
    assert f"--home-dir {operator_image.WORKDIR}" in runs


def test_helm_pin_tracks_the_dockerfile(builder_args: dict[str, str]) -> None:
    # The Dockerfile downloads the official archive; this machine cannot, so the local image carries
    # the cache's helm (pinned by the binary's sha256). A moved Dockerfile pin fails here first.
    assert builder_args["HELM_VERSION"] == operator_image.DOCKERFILE_HELM_VERSION
    assert builder_args["HELM_SHA256_AMD64"] == operator_image.DOCKERFILE_HELM_SHA256_AMD64
    major = re.match(r"v(\d+)\.", operator_image.DOCKERFILE_HELM_VERSION)
    assert major is not None
    assert operator_image.IMAGE_HELM_VERSION.startswith(f"v{major.group(1)}."), (
        "the local image's helm must be the Dockerfile's major version"
    )
    path, sha = operator_image._helm_binary()
    assert path.parent.name == "helm-" + operator_image.IMAGE_HELM_VERSION.lstrip("v")
    assert re.fullmatch(r"[0-9a-f]{64}", sha)


def test_image_config_carries_the_promises() -> None:
    config = operator_image.image_config("sha256:" + "0" * 64)
    inner = config["config"]
    assert isinstance(inner, dict)
    assert inner["User"] == "65532:65532"
    assert inner["Entrypoint"] == ["tini", "--", "communication-operator"]
    assert inner["Cmd"] == ["run"]
    assert inner["ExposedPorts"] == {"8080/tcp": {}, "9090/tcp": {}}
    assert "PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in inner["Env"]
    assert "HOME=/tmp/operator" in inner["Env"]


def test_layer_is_owned_by_root_except_the_writable_dir(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "tmp" / "operator").mkdir(parents=True)
    (rootfs / "usr" / "bin").mkdir(parents=True)
    (rootfs / "usr" / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    (rootfs / "usr" / "bin" / "tool").chmod(0o755)
    (rootfs / "usr" / "bin" / "alias").symlink_to("tool")
    out = tmp_path / "image.tar"
    operator_image.write_oci_layout(rootfs, "localhost/x:1", out)
    second = tmp_path / "again.tar"
    operator_image.write_oci_layout(rootfs, "localhost/x:1", second)
    assert out.read_bytes() == second.read_bytes(), "the same rootfs must give the same image"
    with tarfile.open(out) as layout:
        index = json.load(layout.extractfile("index.json"))  # type: ignore[arg-type]
        (descriptor,) = index["manifests"]
        assert descriptor["annotations"]["io.containerd.image.name"] == "localhost/x:1"
        manifest = json.load(layout.extractfile("blobs/sha256/" + descriptor["digest"][7:]))  # type: ignore[arg-type]
        layer_file = layout.extractfile("blobs/sha256/" + manifest["layers"][0]["digest"][7:])
        assert layer_file is not None
        layer_bytes = layer_file.read()
    with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as layer:
        members = {m.name: m for m in layer.getmembers()}
    assert members["tmp/operator"].uid == 65532
    assert members["usr/bin/tool"].uid == 0
    assert members["usr/bin/tool"].mode == 0o755
    assert members["usr/bin/alias"].issym()
    assert members["usr/bin/alias"].linkname == "tool"


def test_cache_clean_up_keeps_images_other_checkouts_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache is shared by every worktree on the machine: a build must not delete the image another
    # checkout built (or reused) a moment ago, only ones unused for a day and the oldest beyond a few.
    monkeypatch.setenv("COMMUNICATION_OPERATOR_CACHE", str(tmp_path))
    directory = operator_image.image_dir()
    directory.mkdir(parents=True)
    now = time.time()
    ages = {"mine": 0, "other-recent": 60, "b": 120, "c": 180, "d": 240, "stale": 2 * 24 * 3600}
    for name, age in ages.items():
        path = directory / f"{name}.tar"
        path.write_bytes(b"x")
        os.utime(path, (now - age, now - age))
    operator_image._remove_stale_images(keep=directory / "mine.tar")
    left = sorted(p.stem for p in directory.glob("*.tar"))
    assert left == ["b", "c", "mine", "other-recent"]
