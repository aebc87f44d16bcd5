"""Pure parts of pending-release recovery and the deployed-workloads source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from communication_operator.workloads.deployed import DEPLOYED_RELEASES_SELECTOR, workloads_from_labels
from communication_operator.workloads.recovery import (
    foreign_helm_processes,
    pending_revision,
    rollback_target,
)


def history(*entries: tuple[int, str]) -> list[dict[str, Any]]:
    return [{"revision": rev, "status": status} for rev, status in entries]


@pytest.mark.parametrize(
    ("entries", "pending", "target"),
    [
        ((), None, None),
        (((1, "deployed"),), None, None),
        (((1, "deployed"), (2, "failed")), None, None),
        (((1, "pending-install"),), 1, None),
        (((1, "deployed"), (2, "pending-upgrade")), 2, 1),
        (((1, "superseded"), (2, "deployed"), (3, "superseded"), (4, "pending-rollback")), 4, 2),
        (((1, "superseded"), (2, "superseded"), (3, "failed"), (4, "pending-upgrade")), 4, 2),
        # Older pending revisions left by earlier crashes do not count; only the newest does.
        (((1, "deployed"), (2, "pending-upgrade"), (3, "deployed")), None, None),
        (((2, "pending-upgrade"), (1, "deployed")), 2, 1),  # order as given does not matter
    ],
)
def test_pending_revision_and_rollback_target(
    entries: tuple[tuple[int, str], ...], pending: int | None, target: int | None
) -> None:
    found = pending_revision(history(*entries))
    assert (found["revision"] if found else None) == pending
    if pending is not None:
        assert rollback_target(history(*entries), pending) == target


def _process(proc: Path, pid: int, *argv: str) -> None:
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")


def test_foreign_helm_processes_match_release_and_namespace(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _process(proc, 10, "/usr/local/bin/helm", "upgrade", "--install", "rel", "web", "--namespace", "octo")
    _process(proc, 11, "helm", "upgrade", "--install", "rel", "web", "-n", "other")  # other namespace
    _process(proc, 12, "helm", "upgrade", "--install", "rel-2", "web", "--namespace", "octo")  # other release
    _process(proc, 13, "python", "upgrade", "rel", "--namespace", "octo")  # not helm
    _process(proc, 14, "helm3", "rollback", "rel", "1", "--namespace=octo")
    (proc / "self").mkdir()

    assert foreign_helm_processes("rel", "octo", proc) == [10, 14]


def test_deployed_workloads_from_release_record_labels() -> None:
    assert DEPLOYED_RELEASES_SELECTOR == (
        "owner=helm,status=deployed,octo-mesh.meshmakers.io/managed-by=communication-operator"
    )
    labels = [
        {
            "octo-mesh.meshmakers.io/tenant": "acme",
            "octo-mesh.meshmakers.io/pool-rt-id": "p1",
            "octo-mesh.meshmakers.io/workload-rt-id": "w2",
        },
        {
            "octo-mesh.meshmakers.io/tenant": "acme",
            "octo-mesh.meshmakers.io/pool-rt-id": "p1",
            "octo-mesh.meshmakers.io/workload-rt-id": "w1",
        },
        {
            "octo-mesh.meshmakers.io/tenant": "beta",
            "octo-mesh.meshmakers.io/pool-rt-id": "p2",
            "octo-mesh.meshmakers.io/workload-rt-id": "w3",
        },
        {"octo-mesh.meshmakers.io/tenant": "acme", "name": "installed-by-hand"},
    ]
    assert workloads_from_labels(labels) == {("acme", "p1"): ["w1", "w2"], ("beta", "p2"): ["w3"]}
