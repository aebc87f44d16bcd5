"""Controller behaviour end to end through the hub and the admin API: routing, queueing, broadcasts,
state transitions, inspection and the admin API's error answers."""

from __future__ import annotations

import aiohttp
import pytest

from communication_operator.contracts import WorkloadDeployedDto
from octo_devtools.controller_sim import AdminRequestError, RunningSimulator
from tests.simulator.wire import RawHubClient

TENANT = "acme"


async def create_workload(sim: RunningSimulator, pool: str, name: str = "adapter") -> str:
    return await sim.admin.create_workload(
        TENANT,
        pool,
        name,
        repository_url="https://charts.example.invalid",
        chart_name="octo-mesh-adapter",
        repository_password="repo-pw",
        values=[{"path": "oauth.clientSecret", "value": "s3cr3t", "isSecret": True}],
        values_yaml="replicaCount: 1\n",
        workload_type="Application",
    )


async def test_workload_deploy_goes_to_the_pool_owner_only(controller_sim: RunningSimulator) -> None:
    admin = controller_sim.admin
    owned = await admin.create_pool(TENANT, "owned")
    elsewhere = await admin.create_pool(TENANT, "elsewhere")
    workload = await create_workload(controller_sim, owned)
    async with (
        await RawHubClient.connect(controller_sim.hub_url) as owner,
        await RawHubClient.connect(controller_sim.hub_url) as bystander,
    ):
        for client, pool in ((owner, owned), (bystander, elsewhere)):
            await client.invoke("RegisterOperatorAsync", True)
            assert (await client.invoke("RegisterPoolAsync", TENANT, pool))["result"] is None
        await admin.deploy_workload(workload)
        push = await owner.push("WorkloadDeployedAsync")
        await bystander.no_message(0.3)
    dto = WorkloadDeployedDto.model_validate(push["arguments"][0])
    assert dto.workload_rt_id == workload
    assert dto.pool_rt_id == owned
    assert dto.workload_type == 1
    assert dto.values_yaml == "replicaCount: 1\n"
    assert dto.repository_password == "repo-pw"
    assert (await admin.workload(workload))["deploymentState"] == "Pending"


async def test_queued_workload_events_flush_on_pool_registration(controller_sim: RunningSimulator) -> None:
    admin = controller_sim.admin
    pool = await admin.create_pool(TENANT, "pool")
    workload = await create_workload(controller_sim, pool)
    await admin.deploy_workload(workload)
    state = await admin.state()
    assert state["queuedWorkloadEvents"] == [
        {"tenantId": TENANT, "poolRtId": pool, "target": "WorkloadDeployedAsync", "workloadRtId": workload}
    ]
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await client.send(
            {"type": 1, "invocationId": "r", "target": "RegisterPoolAsync", "arguments": [TENANT, pool]}
        )
        # The controller sends queued events from inside RegisterPoolAsync, so they precede its completion.
        first = await client.next_message()
        second = await client.next_message()
    assert first["target"] == "WorkloadDeployedAsync"
    assert first["arguments"][0]["workloadRtId"] == workload
    assert second == {"type": 3, "invocationId": "r", "result": None}
    assert (await admin.state())["queuedWorkloadEvents"] == []


async def test_pool_events_broadcast_to_registered_operators(controller_sim: RunningSimulator) -> None:
    admin = controller_sim.admin
    pool = await admin.create_pool(TENANT, "pool")
    workload = await create_workload(controller_sim, pool)
    async with (
        await RawHubClient.connect(controller_sim.hub_url) as central,
        await RawHubClient.connect(controller_sim.hub_url) as edge,
        await RawHubClient.connect(controller_sim.hub_url) as unregistered,
    ):
        assert (await central.invoke("RegisterOperatorAsync", True))["result"] == []
        await edge.invoke("RegisterOperatorAsync", False)
        await admin.deploy_pool(pool)
        for client in (central, edge):
            assert (await client.push("PoolDeployedAsync"))["arguments"] == [
                {"tenantId": TENANT, "poolRtId": pool}
            ]
        await central.invoke("RegisterPoolAsync", TENANT, pool)
        await admin.deploy_workload(workload)
        await central.push("WorkloadDeployedAsync")
        await admin.pre_update(TENANT)
        assert (await edge.push("PreUpdateTenantAsync"))["arguments"] == [TENANT]
        await admin.undeploy_pool(pool)
        undeploy = await central.push("WorkloadUndeployedAsync")  # workloads first ...
        assert undeploy["arguments"][0]["workloadRtId"] == workload
        pool_gone = await central.push("PoolUndeployedAsync")  # ... then the pool
        assert pool_gone["arguments"] == [TENANT, pool]
        assert (await edge.push("PoolUndeployedAsync"))["arguments"] == [TENANT, pool]
        await unregistered.no_message(0.2)
    state = await admin.state()
    assert state["pools"][0]["deploymentState"] == "Undeployed"
    assert state["workloads"][0]["deploymentState"] == "Undeployed"


async def test_operator_reports_drive_the_state(controller_sim: RunningSimulator) -> None:
    admin = controller_sim.admin
    cloud = await admin.create_pool(TENANT, "cloud", "Cloud")
    edge = await admin.create_pool(TENANT, "edge", "Edge")
    workload = await create_workload(controller_sim, cloud)
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await client.invoke("RegisterOperatorAsync", True)
        mismatch = await client.invoke("RegisterPoolAsync", TENANT, edge)
        assert mismatch["error"].endswith(
            f"HubException: Pool {edge} has environment Edge, "
            "which does not match this operator's mode (central)."
        )
        report = [{"tenantId": TENANT, "poolRtId": cloud, "poolName": "", "workloadRtIds": []}]
        assert (await client.invoke("ReportDeployedStateAsync", report))["result"] is None
        pool = await admin.pool(cloud)
        assert (pool["communicationState"], pool["deploymentState"]) == ("Online", "Deployed")

        await admin.deploy_workload(workload)
        await client.push("WorkloadDeployedAsync")
        progress = {
            "tenantId": TENANT,
            "workloadName": "adapter",
            "workloadRtId": workload,
            "message": "1/2 ready",
        }
        await client.invoke("ReportWorkloadDeploymentProgressAsync", progress)
        status = {"tenantId": TENANT, "workloadName": "adapter", "workloadRtId": workload, "success": True}
        await client.invoke("ReportWorkloadDeploymentStatusAsync", status)
        scale = {
            "tenantId": TENANT,
            "workloadRtId": workload,
            "workloadName": "adapter",
            "replicas": 0,
            "success": True,
        }
        await client.invoke("ReportWorkloadScaleStatusAsync", scale)
    state = await admin.state()
    (rendered,) = state["workloads"]
    assert rendered["deploymentState"] == "Deployed"
    assert rendered["progress"] == ["1/2 ready"]
    assert rendered["workloadType"] == "Application"
    assert state["scaleReports"][0]["replicas"] == 0
    # The operator's connection closed: its pool goes Offline.
    assert await admin.wait_for(
        lambda s: s["pools"][0]["communicationState"] == "Offline", description="Offline"
    )


async def test_report_deployed_state_is_refused_for_edge_operators(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await client.invoke("RegisterOperatorAsync", False)
        refused = await client.invoke("ReportDeployedStateAsync", [])
    assert refused["error"] == (
        "An unexpected error occurred invoking 'ReportDeployedStateAsync' on the server. HubException: "
        "ReportDeployedStateAsync is only accepted from operators that manage pools "
        "(RegisterOperatorAsync(true)); "
        "this connection is in edge mode."
    )


async def test_calls_record_every_invocation_with_secrets_redacted(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        leaky = {"repositoryPassword": "pw", "values": [{"path": "p", "value": "s3cr3t", "isSecret": True}]}
        await client.invoke("SomethingAsync", leaky)
        await client.invoke("RegisterOperatorAsync", None)
    calls = await controller_sim.admin.calls()
    assert [c["method"] for c in calls] == ["SomethingAsync", "RegisterOperatorAsync"]
    assert calls[0]["arguments"] == [
        {"repositoryPassword": "***", "values": [{"path": "p", "value": "***", "isSecret": True}]}
    ]
    assert calls[1]["connectionId"] == client.connection_id
    assert calls[0]["time"] <= calls[1]["time"]
    assert "s3cr3t" not in str(calls)


async def test_raw_push_reaches_every_connection_verbatim(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        assert await controller_sim.admin.push("WorkloadDeployedAsync", [{"tenantId": 5}, "extra"]) == 1
        push = await client.push("WorkloadDeployedAsync")
    assert push == {"type": 1, "target": "WorkloadDeployedAsync", "arguments": [{"tenantId": 5}, "extra"]}


async def test_admin_api_refusals_name_the_problem(controller_sim: RunningSimulator) -> None:
    admin = controller_sim.admin
    edge = await admin.create_pool(TENANT, "edge", "Edge")
    with pytest.raises(AdminRequestError, match="EdgePoolNotDeployable") as edge_deploy:
        await admin.deploy_pool(edge)
    assert edge_deploy.value.status == 409
    with pytest.raises(AdminRequestError, match="'environment' must be one of Edge, Cloud") as bad_env:
        await admin.create_pool(TENANT, "x", "Orbit")
    assert bad_env.value.status == 400
    with pytest.raises(AdminRequestError, match="does not exist") as missing:
        await admin.deploy_workload("0" * 24)
    assert missing.value.status == 404
    with pytest.raises(AdminRequestError, match="Unknown fault kind 'explode'"):
        await admin.fault("explode")
    async with (
        aiohttp.ClientSession() as session,
        session.post(controller_sim.base_url + "/admin/pools", data="{") as response,
    ):
        assert response.status == 400
        assert "not JSON" in (await response.json())["error"]
