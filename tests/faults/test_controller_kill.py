"""Controller SIGKILL and restart during 10 deploys (issue 13, item 5).

The deploys finish while the controller is away, so their final statuses wait in the operator's
outbox. The restarted controller re-dispatches every workload that is still Pending when the pool
registers (``isReconciliation: true``). Promise: the controller records exactly one final status per
deploy, and helm made exactly one revision per deploy (no second helm run for a re-dispatch whose
answer is already queued).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from octo_devtools.testing.waiting import consistently, eventually
from tests.faults.conftest import FaultRig

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

DEPLOYS = 10


async def test_controller_sigkill_during_ten_deploys_one_final_and_one_revision_each(rig: FaultRig) -> None:
    operator = await rig.start_operator(HELM__MAXCONCURRENT="4")
    sim = rig.sim
    workloads = [await rig.create_workload(f"web-{n}") for n in range(DEPLOYS)]
    started = time.monotonic()
    for workload in workloads:
        await sim.admin.deploy_workload(workload)

    async def some_final() -> bool:
        records = [await rig.latest_deploy(w) for w in workloads]
        return any(r["finalStatuses"] for r in records)

    # Kill while the deploys run: at least one has reported, most are still in flight or queued.
    await eventually(some_final, timeout=90, interval=0.1, what="the first final status")
    await sim.kill()
    await eventually(operator.disconnected, timeout=15, what="the operator noticing the controller is gone")

    async def all_deployed_in_helm() -> bool:
        statuses = [await rig.release_status(rig.release(w)) for w in workloads]
        return all(s == "deployed" for s in statuses)

    await eventually(all_deployed_in_helm, timeout=120, interval=0.5, what="every release deployed")
    deploy_seconds = time.monotonic() - started
    unreported = [w for w in workloads if not (await _latest_offline(rig, w))]
    await sim.start()  # same port, same state file: pools and workloads kept, connections gone

    async def all_final() -> bool:
        records = [await rig.latest_deploy(w) for w in workloads]
        return all(r["finalStatuses"] for r in records)

    await eventually(all_final, timeout=60, interval=0.2, what="a final status for every deploy")
    await eventually(
        lambda: _outbox_empty(rig), timeout=30, what="the operator's outbox empty after reconnecting"
    )

    # A re-dispatch wrongly run again shows within one deploy's time: a new helm revision first.
    async def one_final_and_one_revision_each() -> bool:
        for workload in workloads:
            record = await rig.latest_deploy(workload)
            history = await rig.history(rig.release(workload))
            if record["finalStatuses"] != 1 or len(history) != 1:
                return False
        return True

    settle = min(max(5.0, deploy_seconds / 2), 15.0)
    try:
        await consistently(
            one_final_and_one_revision_each, duration=settle, interval=0.5, what="one final and one revision"
        )
    except AssertionError as exc:
        report = [await _describe(rig, w) for w in workloads]
        raise AssertionError(
            f"{exc}\n{len(unreported)} deploy(s) finished while the controller was away; after its "
            "restart:\n" + "\n".join(report)
        ) from None
    for workload in workloads:
        record = await rig.latest_deploy(workload)
        assert [r["success"] for r in record["reports"] if r["kind"] == "status"] == [True], record


async def _describe(rig: FaultRig, workload: str) -> str:
    record = await rig.latest_deploy(workload)
    history = await rig.history(rig.release(workload))
    statuses = [r["success"] for r in record["reports"] if r["kind"] == "status"]
    return (
        f"{workload}: finals={record['finalStatuses']} {statuses} revisions={len(history)} "
        f"dispatches={[d['how'] for d in record['dispatches']]}"
    )


async def _latest_offline(rig: FaultRig, workload: str) -> bool:
    """Whether the controller had the deploy's final status before it was killed (read from its
    state file, since it is down)."""
    assert rig.sim.options.state_file is not None
    document = json.loads(await asyncio.to_thread(_read, rig.sim.options.state_file))
    for raw in document["workloads"]:
        if raw["workloadRtId"] == workload and raw.get("deploys"):
            return any(r["kind"] == "status" for r in raw["deploys"][-1]["reports"])
    return False


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


async def _outbox_empty(rig: FaultRig) -> bool:
    return await rig.op.connected() and await rig.op.metric("communication_operator_outbox_depth") == 0
