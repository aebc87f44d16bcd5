"""Connection faults while a failing deploy reports live progress (issue 13, item 5).

The fake kubelet fails the image pull, so the operator reports ``ErrImagePull``/``ImagePullBackOff``
progress until fail-fast ends helm and it sends the final (failed) status. During that progress the
controller:

* ``drop``: loses the TCP connection without a Close message (network failure);
* ``close-error``: sends a SignalR Close with an error;
* ``freeze-thaw``: stops reading and answering (SIGSTOP-like) until the operator has finished the
  deploy while away, then thaws: the final status is still queued when the pool registers again and
  the controller re-dispatches the Pending workload.

Promise: the controller records exactly one final status for the deploy, no progress report after it,
and helm ran the upgrade once (``communication_operator_helm_runs_total{operation="upgrade"}``: helm
uninstalls a failed first install, so its history cannot tell).
"""

from __future__ import annotations

import pytest

from octo_devtools.testing.waiting import consistently, eventually
from tests.faults.conftest import FaultRig, image_values

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

MISSING_IMAGE = "example.invalid/missing"
FAIL_FAST_SECONDS = 6  # OPERATOR__HELM__FAILFASTIMAGENOTFOUNDSECONDS: the live-progress window


@pytest.mark.parametrize("fault", ["drop", "close-error", "freeze-thaw"])
async def test_fault_during_live_progress_one_final_and_no_progress_after_it(
    rig: FaultRig, fault: str
) -> None:
    rig.kubelet.add_rule(f"{MISSING_IMAGE}:*", "image-pull-backoff")
    operator = await rig.start_operator(HELM__FAILFASTIMAGENOTFOUNDSECONDS=str(FAIL_FAST_SECONDS))
    sim = rig.sim
    workload = await rig.create_workload("failing-web", values_yaml=image_values(MISSING_IMAGE))
    release = rig.release(workload)
    await sim.admin.deploy_workload(workload)
    await rig.wait_progress(workload)

    if fault == "freeze-thaw":
        await sim.admin.fault("freeze")
        await eventually(operator.disconnected, timeout=15, what="the operator giving up on the frozen hub")

        async def deploy_finished() -> bool:
            runs = await operator.metric("communication_operator_helm_runs_total", operation="upgrade")
            return runs >= 1

        await eventually(deploy_finished, timeout=60, interval=0.2, what="the deploy finished while away")
        record = await rig.latest_deploy(workload)
        assert record["finalStatuses"] == 0, "the final status must not have reached the frozen hub"
        await sim.admin.fault("thaw")
    else:
        assert await sim.admin.fault(fault) == 1
    await operator.wait_connected(timeout=30)

    record = await rig.wait_final(workload, timeout=90)

    async def helm_runs() -> float:
        return await operator.metric("communication_operator_helm_runs_total", operation="upgrade")

    async def one_final_nothing_after() -> bool:
        current = await rig.latest_deploy(workload)
        return current["finalStatuses"] == 1 and current["progressAfterFinal"] == 0 and await helm_runs() == 1

    # A second run for the re-dispatch would report again within the fail-fast window.
    try:
        await consistently(
            one_final_nothing_after,
            duration=FAIL_FAST_SECONDS + 2,
            interval=0.3,
            what="one final, none after",
        )
    except AssertionError as exc:
        current = await rig.latest_deploy(workload)
        history = [entry["status"] for entry in await rig.history(release)]
        reports = [(r["kind"], r.get("success"), (r["message"] or "")[:60]) for r in current["reports"]]
        raise AssertionError(
            f"{exc}\nafter {fault}: finals={current['finalStatuses']} "
            f"progressAfterFinal={current['progressAfterFinal']} helm upgrades={await helm_runs():g} "
            f"helm history={history} "
            f"dispatches={[d['how'] for d in current['dispatches']]}\nreports: {reports}"
        ) from None
    final = next(r for r in record["reports"] if r["kind"] == "status")
    assert final["success"] is False
