"""Values directories of a killed operator are recognised at the next start (issue 13, item 11)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from communication_operator.workloads.values import RenderedValues
from communication_operator.workloads.valuesdirs import (
    owner_tag,
    process_start_time,
    remove_orphaned_values_dirs,
    values_files,
)


def _make(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "values-base.yaml").write_text("a: 1\n")
    return directory


def test_a_predecessor_with_the_same_pid_is_recognised_by_its_start_time(tmp_path: Path) -> None:
    # Under tini the operator has the same pid on every start; the emptyDir keeps the old directory.
    pid = os.getpid()
    started = process_start_time(pid)
    assert started is not None
    assert started.isdigit()
    predecessor = _make(tmp_path, f"octo-values-{pid}.{int(started) - 1234}-acme-w1-abc")
    older_version = _make(tmp_path, f"octo-values-{pid}-acme-w2-def")  # names of versions before this fix
    own = _make(tmp_path, f"octo-values-{owner_tag()}-acme-w3-ghi")

    assert remove_orphaned_values_dirs(tmp_path) == 2

    assert not predecessor.exists()
    assert not older_version.exists()
    assert own.exists()


def test_a_live_process_other_than_us_keeps_its_directory_and_a_dead_one_loses_it(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        alive = _make(tmp_path, f"octo-values-{owner_tag(child.pid)}-acme-w1-abc")
        gone = _make(tmp_path, f"octo-values-{dead.pid}.{process_start_time(child.pid)}-acme-w2-def")
        assert remove_orphaned_values_dirs(tmp_path) == 1
        assert alive.exists()
        assert not gone.exists()
    finally:
        child.kill()
        child.wait()


def test_values_files_carry_the_owner_tag_and_survive_a_cleanup_while_in_use(tmp_path: Path) -> None:
    rendered = RenderedValues(
        release="acme-w1",
        secret_name="acme-w1-octo-secrets",
        context_yaml="a: 1\n",
        base_yaml="",
        overrides_yaml="",
        secret_data={},
    )
    with values_files(rendered, temp_root=tmp_path) as files:
        directory = files[0].parent
        assert directory.name.startswith(f"octo-values-{owner_tag()}-acme-w1-")
        assert remove_orphaned_values_dirs(tmp_path) == 0
        assert directory.exists()
    assert not directory.exists()
