"""The helm 4 replica pin, field-ownership conflicts and --force-conflicts (workloads/replicas.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from communication_operator.workloads.helm import HelmCli
from communication_operator.workloads.replicas import explain_field_conflict, replica_pin

from .doubles import Harness
from .fake_helm import FakeHelm

# helm 4.x stderr after our scale to 0 and a redeploy applying the chart's 1 (seen in
# tests/integration/workloads/test_replica_pin.py).
HELM4_CONFLICT = (
    'helm upgrade --install failed with exit code 1. stderr: level=WARN msg="upgrade failed" name=acme-1 '
    'error="conflict occurred while applying object t-ns/acme-1-web apps/v1, Kind=Deployment: Apply failed '
    'with 1 conflict: conflict with \\"octo-communication-operator\\" using apps/v1: .spec.replicas"\n'
    "Error: UPGRADE FAILED: an error occurred while rolling back the release. original upgrade error: "
    "conflict occurred while applying object t-ns/acme-1-web apps/v1, Kind=Deployment: Apply failed with 1 "
    'conflict: conflict with "octo-communication-operator" using apps/v1: .spec.replicas'
)
# The API server's form for several fields (k8s.io/apimachinery merge.Conflicts).
TWO_CONFLICTS = (
    "Error: UPGRADE FAILED: conflict occurred while applying object octo/web apps/v1, Kind=Deployment: "
    'Apply failed with 2 conflicts: conflicts with "kubectl-edit":\n- .spec.replicas\n- .spec.paused'
)


def test_a_conflict_names_the_object_the_other_field_manager_the_fields_and_the_remedies() -> None:
    message = explain_field_conflict(HELM4_CONFLICT)

    assert message.startswith(
        "helm's server-side apply of Deployment t-ns/acme-1-web conflicts with field manager "
        '"octo-communication-operator" over .spec.replicas: another client changed these fields'
    ), message
    assert "OPERATOR__HELM__FORCECONFLICTS=true" in message
    assert message.endswith(HELM4_CONFLICT)


def test_several_fields_of_one_manager_are_all_named() -> None:
    message = explain_field_conflict(TWO_CONFLICTS)
    assert 'field manager "kubectl-edit" over .spec.paused, .spec.replicas:' in message


def test_other_helm_errors_are_left_as_they_are() -> None:
    error = "helm upgrade --install failed with exit code 1. stderr: Error: chart not found"
    assert explain_field_conflict(error) == error


@pytest.mark.parametrize(
    ("live", "hibernated", "server_side_apply", "pin"),
    [
        (3, False, True, 3),
        (1, False, True, 1),
        (0, False, True, None),  # to run again: the chart's count (helm may conflict; explained)
        (None, False, True, None),  # no Deployment, or unreadable
        (3, True, True, 0),
        (None, True, False, 0),
        (3, False, False, None),  # helm 3: three-way merge, no pin
    ],
)
def test_pin_rules(live: int | None, hibernated: bool, server_side_apply: bool, pin: int | None) -> None:
    assert replica_pin(live, hibernated=hibernated, server_side_apply=server_side_apply) == pin


@pytest.mark.parametrize(("version", "flagged"), [("v4.1.0", True), ("v3.19.0", False)])
async def test_force_conflicts_goes_to_the_real_helm_4_upgrade_only(
    tmp_path: Path, version: str, flagged: bool
) -> None:
    fake = FakeHelm(tmp_path / "helm")
    fake.set("version", stdout=version)
    helm = HelmCli(binary=str(fake.binary))
    for dry_run in (True, False):
        await helm.upgrade_install(
            "rel",
            "octo-abc/web",
            namespace="octo",
            values_files=[],
            chart_version=None,
            timeout_seconds=42,
            history_max=3,
            labels={},
            dry_run=dry_run,
            force_conflicts=True,
        )
    (dry,) = fake.calls("dry-run")
    (real,) = fake.calls("upgrade")
    assert "--force-conflicts" not in dry.argv
    assert ("--force-conflicts" in real.argv) is flagged


class LiveReplicas:
    def __init__(self, count: int | None) -> None:
        self.count = count
        self.reads: list[tuple[str, str]] = []

    async def live_replicas(self, namespace: str, release: str) -> int | None:
        self.reads.append((namespace, release))
        return self.count


@pytest.mark.parametrize(
    ("version", "live", "hibernated", "expected"),
    [
        ("v4.1.0", 3, False, ["--set", "replicaCount=3"]),
        ("v4.1.0", 0, False, []),
        ("v4.1.0", None, False, []),
        ("v4.1.0", 3, True, []),  # values-overrides.yaml says replicaCount: 0
        ("v3.19.0", 3, False, []),
    ],
)
async def test_a_deploy_pins_the_live_count_on_dry_run_and_upgrade(
    tmp_path: Path, version: str, live: int | None, hibernated: bool, expected: list[str]
) -> None:
    h = Harness(tmp_path, force_conflicts=True)
    h.fake.set("version", stdout=version)
    h.fake.history((3, "deployed"))
    h.replicas = LiveReplicas(live)
    h.rebuild()

    await h.deploy(hibernated=hibernated)
    await h.settle()

    (status,) = h.hub.statuses()
    assert status.success, status
    for op in ("dry-run", "upgrade"):
        (call,) = h.fake.calls(op)
        argv = call.argv
        assert [a for i, a in enumerate(argv) if a == "--set" or argv[i - 1] == "--set"] == expected, op
