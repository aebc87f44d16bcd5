"""Order and delivery (issue 13, item 5): a deploy that finishes while the controller is away gets
exactly one final status as the controller records it, no second helm run when the controller
re-dispatches the still-Pending workload on reconnect, and no progress report after the final one.

Real simulator (frozen, or a child process killed with SIGKILL and started again), real helm, the
local cluster and the fake kubelet.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from communication_operator.contracts import ServerMethod
from octo_devtools.controller_sim import SimulatorProcess
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.simulator import ProcessFactory
from octo_devtools.testing.waiting import eventually
from tests.unit.workloads.doubles import deploys, metric

from .conftest import Deployer, DeployerFactory

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

PROGRESS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS


def reports_of(calls: list[dict[str, Any]], workload: str) -> list[str]:
    """The methods of every progress/status report of ``workload``, in the order the controller took them."""
    return [
        call["method"]
        for call in calls
        if call["method"] in (PROGRESS, STATUS)
        and call["error"] is None
        and call["arguments"][0].get("workloadRtId") == workload
    ]


def assert_one_final_and_nothing_after(methods: list[str], workload: str) -> None:
    assert methods.count(STATUS) == 1, f"{workload}: {methods}"
    assert methods[-1] == STATUS, f"{workload}: progress after the final status: {methods}"


async def finished(d: Deployer, count: int) -> bool:
    metrics = d.service.metrics
    return deploys(metrics, "success") + deploys(metrics, "failure") >= count


async def idle_after_reconnect(d: Deployer, connects: int) -> None:
    """Wait until the operator reconnected, delivered everything and handled the re-dispatches."""
    await eventually(lambda: _true(d.hub.stats.connects >= connects), timeout=30, what="the reconnect")
    await eventually(lambda: _true(d.hub.outbox_depth == 0), timeout=30, what="the outbox drained")
    await asyncio.sleep(1.0)  # re-dispatches are pushed with the pool registration; let them land
    async with asyncio.timeout(90):
        await d.service.wait_idle()


async def _true(value: bool) -> bool:
    return value


@pytest.mark.parametrize("outcome", ["succeeds", "fails with live progress"])
async def test_a_deploy_finishing_while_the_controller_is_frozen_is_reported_once_without_a_helm_rerun(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet, outcome: str
) -> None:
    if outcome == "succeeds":
        fake_kubelet.add_rule("example.invalid/slow*", "ready", delay=6)
    else:
        fake_kubelet.add_rule("example.invalid/slow*", "image-pull-backoff")
    d = await deployer()
    workload = await d.deploy(values=[{"path": "image.repository", "value": "example.invalid/slow"}])
    release = d.release(workload)
    await eventually(lambda: d.history(release), timeout=30, what="helm to create the release")
    if outcome != "succeeds":
        await eventually(
            lambda: _has_progress(d, workload), timeout=30, what="live progress at the controller"
        )

    await d.sim.admin.fault("freeze")
    await eventually(lambda: _true(not d.hub.connected), timeout=15, what="the operator to give up the link")
    await eventually(lambda: finished(d, 1), timeout=60, what="the deploy to finish while frozen")
    await d.sim.admin.fault("thaw")
    await idle_after_reconnect(d, connects=2)

    state = await d.state_of(workload)
    assert state["deploymentState"] == ("Deployed" if outcome == "succeeds" else "Error"), state
    calls = await d.sim.admin.calls()
    assert_one_final_and_nothing_after(reports_of(calls, workload), workload)
    # The reconnect order is kept: operator, then pool, then the queued final status.
    final = next(call for call in calls if call["method"] == STATUS)
    on_final_connection = [c["method"] for c in calls if c["connectionId"] == final["connectionId"]]
    assert on_final_connection[:2] == [ServerMethod.REGISTER_OPERATOR, ServerMethod.REGISTER_POOL]
    if outcome == "succeeds":  # (a failed first install leaves no history: helm removes it)
        assert len(await d.history(release)) == 1, "helm ran again for the re-dispatch"
    assert metric(d.service.metrics, "workload_deploys_started_total") == 1, (
        "helm ran again for the re-dispatch"
    )


async def _has_progress(d: Deployer, workload: str) -> bool:
    return PROGRESS in reports_of(await d.sim.admin.calls(), workload)


@pytest.mark.slow
async def test_controller_sigkilled_during_ten_deploys_records_one_final_status_each(
    deployer: DeployerFactory,
    fake_kubelet: FakeKubelet,
    controller_sim_process_factory: ProcessFactory,
) -> None:
    fake_kubelet.add_rule("example.invalid/slow*", "ready", delay=8)
    sim: SimulatorProcess = await controller_sim_process_factory()
    d = await deployer(sim=sim, max_concurrent=10)
    workloads = [
        await d.create(f"w{index}", values=[{"path": "image.repository", "value": "example.invalid/slow"}])
        for index in range(10)
    ]
    for workload in workloads:
        await sim.admin.deploy_workload(workload)

    async def all_releases_exist() -> bool:
        return all([bool(await d.history(d.release(w))) for w in workloads])

    await eventually(all_releases_exist, timeout=60, what="every helm run to create its release")
    before_kill = await sim.admin.calls()
    await sim.kill()
    await eventually(lambda: finished(d, 10), timeout=120, what="every deploy to finish, controller gone")
    await sim.start()
    await idle_after_reconnect(d, connects=2)

    after_restart = await sim.admin.calls()
    for workload in workloads:
        assert (await d.state_of(workload))["deploymentState"] == "Deployed"
        methods = reports_of(before_kill, workload) + reports_of(after_restart, workload)
        assert_one_final_and_nothing_after(methods, workload)
        assert len(await d.history(d.release(workload))) == 1, f"{workload}: helm ran twice"
    assert metric(d.service.metrics, "workload_deploys_started_total") == 10
