"""Operator SIGKILL during ``helm upgrade --install --wait`` (issue 13, items 9 and 11).

A pod that never becomes Ready keeps helm waiting; the operator is killed as a container is killed
(every process at once, helm included), which leaves the release ``pending-install`` or
``pending-upgrade`` and the deploy's values directory behind. The user fixes the image and the
controller re-dispatches the still-Pending workload when the restarted operator registers the pool.
Promise: that next deploy succeeds; no release stays ``pending-*`` or ``uninstalling``; no values
directory is left (the restarted operator has the same PID as the killed one, as under tini).
"""

from __future__ import annotations

import asyncio

import pytest

from octo_devtools.testing.waiting import eventually
from tests.faults.conftest import READY_IMAGE, FaultRig, image_values

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

NEVER_READY_IMAGE = "example.test/never-ready"
#: Deploys of the never-ready image tried before giving up on seeing helm wait (see below).
EARLY_SUCCESS_ATTEMPTS = 3
#: Seconds helm must go on waiting before the test trusts that it waits on the never-ready pod.
STILL_WAITING_AFTER = 1.0
STUCK = ("pending-install", "pending-upgrade", "pending-rollback", "uninstalling")


async def deploy_until_helm_waits(rig: FaultRig, workload: str) -> str:
    """Dispatch the never-ready deploy and wait until helm waits on it: the release ``pending-install``
    (or ``pending-upgrade`` if it existed), a values directory present. Returns that status.

    helm 4's ``--wait=watcher`` once reported an upgrade to the never-ready image deployed 0.3 s after
    it started, in a CI run under load (most likely its watcher read the Deployment from a stale cache
    that still showed the previous, Ready revision; docs/workloads.md, known limits). The operator
    reports what helm says, so that deploy ended successfully and helm never waited. This test is
    about the kill during the wait, not about helm's wait, so it dispatches again, with a new tag,
    when that happens: the previous revision is then the never-ready one, which no view shows Ready.
    """
    release = rig.release(workload)
    for attempt in range(1, EARLY_SUCCESS_ATTEMPTS + 1):
        await rig.sim.admin.update_workload(
            workload, valuesYaml=image_values(NEVER_READY_IMAGE, tag=str(attempt))
        )
        expected = "pending-install" if await rig.release_status(release) is None else "pending-upgrade"
        dispatched = len(await rig.deploys(workload))
        await rig.sim.admin.deploy_workload(workload)

        async def helm_waiting_or_done(dispatched: int = dispatched, expected: str = expected) -> str | None:
            records = await rig.deploys(workload)
            if len(records) > dispatched and records[-1]["finalStatuses"]:
                return "done"
            if await rig.release_status(release) == expected and rig.values_dirs():
                return "waiting"
            return None

        outcome = await eventually(
            helm_waiting_or_done, timeout=60, interval=0.2, what=f"helm waiting ({expected})"
        )
        if outcome == "waiting":
            # Still waiting a second later: helm's early success comes within a second of its start.
            await asyncio.sleep(STILL_WAITING_AFTER)
            if await helm_waiting_or_done() == "waiting":
                return expected
        record = await rig.wait_final(workload)
        final = [report for report in record["reports"] if report["kind"] == "status"][-1]
        assert final["success"] is True, (
            f"the never-ready deploy failed before the kill: {final['message']!r}"
        )
        # The operator's rollout check says what helm's wait missed (docs/workloads.md, known limits).
        rollout = [line for line in rig.op.log_text().splitlines() if "rollout is not finished" in line]
        print(
            f"attempt {attempt}: helm reported the never-ready deploy done ({final['message']!r}); "
            f"dispatching again. The operator's rollout check: {rollout[-1:] or 'no warning'}"
        )
    raise AssertionError(f"helm never waited on the never-ready image in {EARLY_SUCCESS_ATTEMPTS} deploys")


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

    expected = await deploy_until_helm_waits(rig, workload)
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
