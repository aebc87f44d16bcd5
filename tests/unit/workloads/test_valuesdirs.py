"""Values directories of a killed operator are recognised at the next start (issue 13, item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _can_unshare() -> bool:
    try:
        result = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


CREATE_AND_DIE = """
import os, signal, sys
from pathlib import Path
from communication_operator.workloads.valuesdirs import values_files
from communication_operator.workloads.values import RenderedValues
rendered = RenderedValues(release="acme-w1", secret_name="s", context_yaml="a: 1\\n", base_yaml="",
                          overrides_yaml="", secret_data={})
with values_files(rendered, temp_root=Path(sys.argv[1])) as files:
    print(os.getpid(), files[0].parent.name, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # killed mid-deploy: no cleanup
"""

CLEAN_UP = """
import os, sys
from pathlib import Path
from communication_operator.workloads.valuesdirs import remove_orphaned_values_dirs
print(os.getpid(), remove_orphaned_values_dirs(Path(sys.argv[1])), flush=True)
"""


def _in_fresh_pid_namespace(script: str, root: Path) -> list[str]:
    """Run ``script`` as pid 2 of a new pid namespace, as tini's child is the same pid on every start."""
    quoted = script.replace("'", "'\"'\"'")
    shell = f"{sys.executable} -c '{quoted}' {root}; true"  # `; true`: sh stays pid 1, python is pid 2
    result = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", shell],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.split()


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare --pid (root or user namespaces)")
def test_a_restart_with_the_same_pid_removes_the_killed_predecessors_directory(tmp_path: Path) -> None:
    pid, name = _in_fresh_pid_namespace(CREATE_AND_DIE, tmp_path)
    assert (tmp_path / name).exists(), "the killed process left its values directory"

    restarted_pid, removed = _in_fresh_pid_namespace(CLEAN_UP, tmp_path)

    assert restarted_pid == pid  # the situation of the shipped image
    assert removed == "1"
    assert not (tmp_path / name).exists()
