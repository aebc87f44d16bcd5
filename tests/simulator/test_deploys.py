"""The per-deploy record (dispatches and reports of each deploy), workload edits and raw frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from communication_operator.contracts import (
    PoolEnvironment,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
)
from octo_devtools.controller_sim import AdminRequestError, RunningSimulator, persistence
from octo_devtools.controller_sim.state import ControllerState
from octo_devtools.controller_sim.views import render_state
from tests.simulator.test_state import TENANT, add_workload
from tests.simulator.wire import RS, RawHubClient


def _progress(workload: str, message: str) -> WorkloadDeploymentProgressDto:
    return WorkloadDeploymentProgressDto(tenant_id=TENANT, workload_rt_id=workload, message=message)


def _status(workload: str, success: bool, message: str | None = None) -> WorkloadDeploymentStatusDto:
    return WorkloadDeploymentStatusDto(
        tenant_id=TENANT, workload_rt_id=workload, success=success, status_message=message
    )


def _deploys(state: ControllerState, workload: str) -> list[dict]:
    (view,) = [w for w in render_state(state)["workloads"] if w["workloadRtId"] == workload]
    return list(view["deploys"])


def test_each_deploy_records_its_dispatches_and_reports_in_order() -> None:
    state = ControllerState()
    pool = state.create_pool(TENANT, "p", PoolEnvironment.CLOUD).pool_rt_id
    workload = add_workload(state, pool)

    state.deploy_workload(workload)  # nobody has the pool: queued
    state.connect("c1")
    state.register_pool("c1", TENANT, pool)  # flushed
    state.report_workload_progress(_progress(workload, "pulling"))
    state.disconnect("c1")
    state.connect("c2")
    state.register_pool("c2", TENANT, pool)  # still Pending: re-dispatched as a reconciliation
    state.report_workload_status(_status(workload, False, "ImagePullBackOff"))
    state.report_workload_progress(_progress(workload, "late"))
    state.report_workload_status(_status(workload, False, "again"))

    (first,) = _deploys(state, workload)
    assert first["number"] == 1
    assert [d["how"] for d in first["dispatches"]] == ["queued", "flushed", "reconciliation"]
    assert [(r["kind"], r["message"]) for r in first["reports"]] == [
        ("progress", "pulling"),
        ("status", "ImagePullBackOff"),
        ("progress", "late"),
        ("status", "again"),
    ]
    assert [r.get("success") for r in first["reports"]] == [None, False, None, False]
    assert first["finalStatuses"] == 2
    assert first["progressAfterFinal"] == 1

    state.deploy_workload(workload)  # c2 owns the pool: sent at once, a new record
    state.report_workload_status(_status(workload, True))
    second = _deploys(state, workload)[1]
    assert (second["number"], [d["how"] for d in second["dispatches"]]) == (2, ["sent"])
    assert (second["finalStatuses"], second["progressAfterFinal"]) == (1, 0)


def test_deploy_records_survive_a_restart_through_the_state_file(tmp_path: Path) -> None:
    state = ControllerState()
    pool = state.create_pool(TENANT, "p", PoolEnvironment.CLOUD).pool_rt_id
    workload = add_workload(state, pool)
    state.deploy_workload(workload)
    state.report_workload_progress(_progress(workload, "pulling"))
    state.report_workload_status(_status(workload, True, "ok"))
    path = tmp_path / "state.json"
    persistence.save(state, path)

    loaded = persistence.load(path)
    assert _deploys(loaded, workload) == _deploys(state, workload)
    # A state file written before deploy records existed still loads; a report then opens a record.
    document = json.loads(path.read_text())
    for raw in document["workloads"]:
        del raw["deploys"]
    path.write_text(json.dumps(document))
    old = persistence.load(path)
    assert _deploys(old, workload) == []
    old.report_workload_status(_status(workload, False, "late"))
    assert [d["finalStatuses"] for d in _deploys(old, workload)] == [1]


async def test_workload_edits_change_the_next_deploy(controller_sim: RunningSimulator) -> None:
    admin = controller_sim.admin
    pool = await admin.create_pool(TENANT, "p", "Edge")
    workload = await admin.create_workload(
        TENANT, pool, "w", repository_url="https://charts.example.invalid", chart_name="c"
    )
    await admin.update_workload(workload, valuesYaml="image:\n  tag: good\n", chartVersion="1.2.3")
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await client.invoke("RegisterOperatorAsync", False)
        await client.invoke("RegisterPoolAsync", TENANT, pool)
        await admin.deploy_workload(workload)
        push = await client.push("WorkloadDeployedAsync")
    dto = push["arguments"][0]
    assert (dto["valuesYaml"], dto["chartVersion"]) == ("image:\n  tag: good\n", "1.2.3")

    with pytest.raises(AdminRequestError, match="Cannot change tenantId") as refused:
        await admin.update_workload(workload, tenantId="other")
    assert refused.value.status == 400
    with pytest.raises(AdminRequestError, match="repository_url must not be empty"):
        await admin.update_workload(workload, repositoryUrl="")
    with pytest.raises(AdminRequestError) as missing:
        await admin.update_workload("0" * 24, name="x")
    assert missing.value.status == 404


async def test_raw_frames_reach_the_client_verbatim(controller_sim: RunningSimulator) -> None:
    admin = controller_sim.admin
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        big = '{"type":1,"target":"X","arguments":[' + "9" * 5000 + "]}"
        assert await admin.send_raw(big) == 1
        assert (await client.ws.receive(timeout=5)).data == big + RS
        assert await admin.send_raw("not json", '{"type":6}') == 1
        assert (await client.ws.receive(timeout=5)).data == "not json" + RS + '{"type":6}' + RS
        assert await admin.send_text('{"type":6}' + RS + '{"type"') == 1  # a record cut off
        assert (await client.ws.receive(timeout=5)).data == '{"type":6}' + RS + '{"type"'
        with pytest.raises(AdminRequestError, match="list of strings"):
            await admin.send_raw(1)  # type: ignore[arg-type]
        # The connection stays open: the simulator does not judge what it was told to send.
        assert (await client.invoke("RegisterOperatorAsync", False))["result"] == []
        # An invocation with an id asks for a client result; the client's Completion is recorded.
        await admin.send_raw('{"type":1,"invocationId":"r1","target":"Ask","arguments":[]}')
        asked = await client.next_message()
        assert asked["invocationId"] == "r1"
        await client.send({"type": 3, "invocationId": "r1", "error": "Client didn't provide a result."})
        completion = await admin.wait_for_completion("r1")
        assert completion["error"] == "Client didn't provide a result."
        assert completion["connectionId"] == client.connection_id
