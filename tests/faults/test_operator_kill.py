"""Operator SIGKILL during ``helm upgrade --install --wait`` (issue 13, items 9 and 11).

A pod that never becomes Ready keeps helm waiting; the operator is killed as a container is killed
(every process at once, helm included), which leaves the release ``pending-install`` or
``pending-upgrade`` and the deploy's values directory behind. The user fixes the image and the
controller re-dispatches the still-Pending workload when the restarted operator registers the pool.
Promise: that next deploy succeeds; no release stays ``pending-*`` or ``uninstalling``; no values
directory is left (the restarted operator has the same PID as the killed one, as under tini).
"""

from __future__ import annotations

import pytest

from octo_devtools.testing.waiting import eventually
from tests.faults.conftest import READY_IMAGE, FaultRig, image_values

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

NEVER_READY_IMAGE = "example.test/never-ready"
STUCK = ("pending-install", "pending-upgrade", "pending-rollback", "uninstalling")


@pytest.mark.parametrize("first_deploy", ["install", "upgrade"])
async def test_operator_sigkill_during_helm_wait_then_the_next_deploy_succeeds(
    rig: FaultRig, first_deploy: str
) -> None:
    rig.kubelet.add_rule(f"{NEVER_READY_IMAGE}:*", "not-ready")
    operator = await rig.start_operator()
    sim = rig.sim
    workload = await rig.create_workload("stuck-web")
    release = rig.release(workload)
    if first_deploy == "upgrade":
        await sim.admin.deploy_workload(workload)
        record = await rig.wait_final(workload)
        assert record["reports"][-1]["success"] is True, record
        await sim.admin.update_workload(workload, valuesYaml=image_values(NEVER_READY_IMAGE))
    else:
        await sim.admin.update_workload(workload, valuesYaml=image_values(NEVER_READY_IMAGE))

    await sim.admin.deploy_workload(workload)
    expected = "pending-upgrade" if first_deploy == "upgrade" else "pending-install"

    async def helm_waiting() -> bool:
        return await rig.release_status(release) == expected and bool(rig.values_dirs())

    await eventually(helm_waiting, timeout=60, interval=0.2, what=f"helm waiting ({expected})")
    pid_before = operator.pid_in_namespace
    await operator.kill()
    assert await rig.release_status(release) == expected  # the kill left the release locked
    leftovers = rig.values_dirs()
    assert leftovers, "the killed deploy's values directory should still be there"

    await sim.admin.update_workload(workload, valuesYaml=image_values(READY_IMAGE))
    await rig.start_operator()
    if operator.pid_namespace:
        # As under tini: the killed operator's PID is the new one's, so "is its owner alive?" says yes.
        assert operator.pid_in_namespace == pid_before == 2

    # The controller re-dispatches the Pending workload (now with the good image) to the new operator.
    record = await rig.wait_final(workload, timeout=120)
    history = await rig.history(release)
    statuses = [entry["status"] for entry in history]
    assert record["reports"][-1]["success"] is True, (
        f"the next deploy after the kill failed: {record['reports'][-1]['message']!r}; helm history "
        f"{statuses}"
    )
    assert [d["how"] for d in record["dispatches"]][-1] == "reconciliation", record["dispatches"]
    # The release's current revision decides whether helm accepts the next operation; the killed
    # revision may stay in the history under its old status once a later one superseded it.
    assert statuses[-1] == "deployed", f"the release is not deployed: {statuses}"
    assert statuses[-1] not in STUCK

    async def no_values_dirs() -> bool:
        return not rig.values_dirs()

    try:
        await eventually(no_values_dirs, timeout=10, interval=0.2, what="no values directory left")
    except AssertionError:
        raise AssertionError(
            f"values directories left behind: {rig.values_dirs()} (killed operator's: {leftovers}; "
            f"PID namespace: {operator.pid_namespace})"
        ) from None
