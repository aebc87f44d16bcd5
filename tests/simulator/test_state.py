"""Controller semantics of the simulator (octo-spec §1.2, §1.3, §1.5, §2), without any networking."""

from __future__ import annotations

import pytest

from communication_operator.contracts import (
    ClientMethod,
    CommunicationState,
    DeploymentState,
    OperatorDeployedPoolReportDto,
    PoolEnvironment,
    ServerMethod,
    ValueOverrideDto,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
    WorkloadType,
)
from octo_devtools.controller_sim.state import (
    AdminError,
    ControllerState,
    HubError,
    Push,
    Workload,
    new_rt_id,
)

TENANT = "acme"


def make_state() -> tuple[ControllerState, str, str]:
    """A state with one Cloud and one Edge pool (both undeployed) and nothing connected."""
    state = ControllerState()
    cloud = state.create_pool(TENANT, "cloud-pool", PoolEnvironment.CLOUD).pool_rt_id
    edge = state.create_pool(TENANT, "edge-pool", PoolEnvironment.EDGE).pool_rt_id
    return state, cloud, edge


def add_workload(state: ControllerState, pool_rt_id: str, name: str = "adapter") -> str:
    workload = Workload(
        tenant_id=TENANT,
        pool_rt_id=pool_rt_id,
        workload_rt_id=new_rt_id(),
        name=name,
        workload_type=WorkloadType.ADAPTER,
        repository_url="https://charts.example.invalid",
        chart_name="octo-mesh-adapter",
        repository_password="repo-pw",
        values=[ValueOverrideDto(path="a.secret", value="s3cr3t", is_secret=True)],
    )
    return state.add_workload(workload).workload_rt_id


def targets(pushes: list[Push]) -> list[tuple[tuple[str, ...], str]]:
    return [(p.connection_ids, p.target) for p in pushes]


def test_new_rt_ids_are_24_lowercase_hex_and_unique() -> None:
    ids = {new_rt_id() for _ in range(100)}
    assert len(ids) == 100
    for rt_id in ids:
        assert len(rt_id) == 24
        assert rt_id == rt_id.lower()
        int(rt_id, 16)


def test_register_operator_returns_only_deployed_cloud_pools() -> None:
    state, cloud, _edge = make_state()
    other = state.create_pool(TENANT, "other", PoolEnvironment.CLOUD).pool_rt_id
    state.deploy_pool(cloud)
    state.connect("c1")
    result = state.invoke("c1", ServerMethod.REGISTER_OPERATOR, [True])
    assert result == [{"tenantId": TENANT, "poolRtId": cloud}]
    assert other not in str(result)
    assert state.connections["c1"].auto_manage_pools is True


@pytest.mark.parametrize("pool_rt_id", ["", "xyz", "65f0c0ffee0000000000aaa", "65f0c0ffee0000000000aaaaz"])
def test_register_pool_rejects_malformed_rt_ids(pool_rt_id: str) -> None:
    state, _cloud, _edge = make_state()
    state.connect("c1")
    with pytest.raises(HubError, match="not a valid pool runtime id"):
        state.register_pool("c1", TENANT, pool_rt_id)


def test_register_pool_enforces_existence_and_environment_for_declared_modes() -> None:
    state, cloud, edge = make_state()
    state.connect("central")
    state.register_operator("central", True)
    with pytest.raises(
        HubError,
        match=f"Pool {edge} has environment Edge, which does not match this operator's mode \\(central\\)",
    ):
        state.register_pool("central", TENANT, edge)
    with pytest.raises(HubError, match="does not exist"):
        state.register_pool("central", TENANT, new_rt_id())
    with pytest.raises(HubError, match="does not exist in tenant 'someone-else'"):
        state.register_pool("central", "someone-else", cloud)
    state.register_pool("central", TENANT, cloud)

    state.connect("edge")
    state.register_operator("edge", False)
    with pytest.raises(
        HubError,
        match=f"Pool {cloud} has environment Cloud, which does not match this operator's mode \\(edge\\)",
    ):
        state.register_pool("edge", TENANT, cloud)
    state.register_pool("edge", TENANT, edge)
    assert state.pools[edge].communication_state == CommunicationState.ONLINE


def test_legacy_operator_registers_anything_without_checks() -> None:
    state, _cloud, edge = make_state()
    state.connect("legacy")
    state.register_operator("legacy", None)
    unknown = new_rt_id()
    state.register_pool("legacy", TENANT, unknown)
    state.register_pool("legacy", TENANT, edge.upper())  # ObjectIds parse case-insensitively
    assert state.connections["legacy"].pools == {(TENANT, unknown), (TENANT, edge)}
    assert state.pools[edge].communication_state == CommunicationState.ONLINE


def test_register_pool_sets_online_and_disconnect_sets_offline_unless_still_claimed() -> None:
    state, cloud, _edge = make_state()
    for connection in ("c1", "c2"):
        state.connect(connection)
        state.register_pool(connection, TENANT, cloud)
    assert state.pools[cloud].communication_state == CommunicationState.ONLINE
    state.disconnect("c1")
    assert state.pools[cloud].communication_state == CommunicationState.ONLINE  # c2 still claims it
    state.disconnect("c2")
    assert state.pools[cloud].communication_state == CommunicationState.OFFLINE


def test_unregister_operator_releases_pools() -> None:
    state, cloud, _edge = make_state()
    state.connect("c1")
    state.register_operator("c1", True)
    state.register_pool("c1", TENANT, cloud)
    state.invoke("c1", ServerMethod.UNREGISTER_OPERATOR, [])
    assert state.pools[cloud].communication_state == CommunicationState.OFFLINE
    assert state.connections["c1"].registered_as_operator is False
    state.deploy_pool(cloud)
    assert state.take_pushes() == []  # no longer receives broadcasts


def test_unregister_pool_marks_unregistered_and_deployed_cloud_pool_pending() -> None:
    state, cloud, edge = make_state()
    state.deploy_pool(cloud)
    state.connect("c1")
    state.register_pool("c1", TENANT, cloud)
    state.register_pool("c1", TENANT, edge)
    state.unregister_pool("c1", TENANT, cloud)
    state.unregister_pool("c1", TENANT, edge)
    assert state.pools[cloud].communication_state == CommunicationState.UNREGISTERED
    assert state.pools[cloud].deployment_state == DeploymentState.PENDING
    assert state.pools[edge].deployment_state == DeploymentState.UNDEPLOYED  # resting pools stay as they are
    assert state.connections["c1"].pools == set()
    with pytest.raises(HubError, match="not a valid pool runtime id"):
        state.unregister_pool("c1", TENANT, "nope")


def test_report_deployed_state_only_from_central_operators() -> None:
    state, cloud, edge = make_state()
    report = [
        OperatorDeployedPoolReportDto(tenant_id=TENANT, pool_rt_id=cloud),
        OperatorDeployedPoolReportDto(tenant_id=TENANT, pool_rt_id=edge),
        OperatorDeployedPoolReportDto(tenant_id=TENANT, pool_rt_id=new_rt_id()),
    ]
    for mode in (None, False):
        state.connect("c")
        state.register_operator("c", mode)
        with pytest.raises(HubError, match="only accepted from operators that manage pools"):
            state.report_deployed_state("c", report)
    state.register_operator("c", True)
    state.report_deployed_state("c", report)
    assert state.pools[cloud].deployment_state == DeploymentState.DEPLOYED
    assert state.pools[cloud].communication_state == CommunicationState.ONLINE
    assert state.pools[edge].deployment_state == DeploymentState.UNDEPLOYED  # non-Cloud pools are skipped
    assert state.connections["c"].pools == {(TENANT, cloud)}


def test_workload_events_reach_only_the_pool_owner() -> None:
    state, cloud, _edge = make_state()
    other = state.create_pool(TENANT, "other", PoolEnvironment.CLOUD).pool_rt_id
    workload = add_workload(state, cloud)
    for connection, pool in (("owner", cloud), ("bystander", other)):
        state.connect(connection)
        state.register_operator(connection, True)
        state.register_pool(connection, TENANT, pool)
    state.take_pushes()
    state.deploy_workload(workload)
    (push,) = state.take_pushes()
    assert push.connection_ids == ("owner",)
    assert push.target == ClientMethod.WORKLOAD_DEPLOYED
    assert push.arguments[0]["workloadRtId"] == workload
    assert (
        push.arguments[0]["repositoryPassword"] == "repo-pw"
    )  # decrypted before sending, as the controller does
    assert state.workloads[workload].deployment_state == DeploymentState.PENDING


def test_workload_events_queue_last_wins_and_flush_on_registration() -> None:
    state, cloud, _edge = make_state()
    first = add_workload(state, cloud, "first")
    second = add_workload(state, cloud, "second")
    state.deploy_workload(first)
    state.deploy_workload(second)
    state.undeploy_workload(first)  # supersedes the queued deploy of `first`
    assert state.take_pushes() == []
    assert list(state.queued[(TENANT, cloud)]) == [second, first]

    state.connect("c1")
    state.register_pool("c1", TENANT, cloud)
    pushes = state.take_pushes()
    assert [(p.target, p.arguments[0]["workloadRtId"]) for p in pushes] == [
        (ClientMethod.WORKLOAD_DEPLOYED, second),
        (ClientMethod.WORKLOAD_UNDEPLOYED, first),
    ]
    assert pushes[0].arguments[0]["isReconciliation"] is False  # flushed, not re-dispatched twice
    assert state.queued == {}


def test_register_pool_redispatches_pending_workloads_as_reconciliation() -> None:
    state, cloud, _edge = make_state()
    workload = add_workload(state, cloud)
    state.connect("c1")
    state.register_pool("c1", TENANT, cloud)
    state.deploy_workload(workload)
    state.take_pushes()
    state.disconnect("c1")  # the operator died before reporting: the workload is stuck in Pending
    state.connect("c2")
    state.register_pool("c2", TENANT, cloud)
    (push,) = state.take_pushes()
    assert push.connection_ids == ("c2",)
    assert push.arguments[0]["workloadRtId"] == workload
    assert push.arguments[0]["isReconciliation"] is True


def test_status_and_progress_reports_drive_workload_state() -> None:
    state, cloud, _edge = make_state()
    workload = add_workload(state, cloud)
    state.deploy_workload(workload)
    progress = WorkloadDeploymentProgressDto(
        tenant_id=TENANT, workload_rt_id=workload, message="pulling image"
    )
    state.report_workload_progress(progress)
    assert state.workloads[workload].deployment_state == DeploymentState.PENDING
    assert state.workloads[workload].status_message == "pulling image"
    assert state.workloads[workload].progress == ["pulling image"]

    state.report_workload_status(
        WorkloadDeploymentStatusDto(
            tenant_id=TENANT, workload_rt_id=workload, success=False, status_message="boom"
        )
    )
    assert state.workloads[workload].deployment_state == DeploymentState.ERROR
    assert state.workloads[workload].status_message == "boom"
    state.report_workload_status(
        WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id=workload, success=True)
    )
    assert state.workloads[workload].deployment_state == DeploymentState.DEPLOYED
    assert state.workloads[workload].status_message is None

    # Reports without identity or for unknown workloads are ignored, as the controller does.
    state.report_workload_status(
        WorkloadDeploymentStatusDto(tenant_id="", workload_rt_id=workload, success=False)
    )
    state.report_workload_status(WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id=new_rt_id()))
    assert state.workloads[workload].deployment_state == DeploymentState.DEPLOYED


def test_pool_deploy_broadcasts_to_registered_operators_only() -> None:
    state, cloud, edge = make_state()
    state.connect("operator")
    state.register_operator("operator", None)
    state.connect("bare")  # connected but never called RegisterOperatorAsync
    state.deploy_pool(cloud)
    assert targets(state.take_pushes()) == [(("operator",), ClientMethod.POOL_DEPLOYED)]
    assert state.pools[cloud].deployment_state == DeploymentState.DEPLOYED
    with pytest.raises(AdminError, match="EdgePoolNotDeployable") as refused:
        state.deploy_pool(edge)
    assert refused.value.status == 409
    state.pre_update_tenant(TENANT)
    assert targets(state.take_pushes()) == [(("operator",), ClientMethod.PRE_UPDATE_TENANT)]


def test_pool_undeploy_undeploys_workloads_first() -> None:
    state, cloud, _edge = make_state()
    deployed = add_workload(state, cloud, "deployed")
    resting = add_workload(state, cloud, "resting")
    state.deploy_pool(cloud)
    state.deploy_workload(deployed)
    state.connect("c1")
    state.register_operator("c1", True)
    state.register_pool("c1", TENANT, cloud)
    state.take_pushes()
    state.undeploy_pool(cloud)
    pushes = state.take_pushes()
    assert [p.target for p in pushes] == [ClientMethod.WORKLOAD_UNDEPLOYED, ClientMethod.POOL_UNDEPLOYED]
    assert pushes[0].arguments[0]["workloadRtId"] == deployed
    assert pushes[1].arguments == [TENANT, cloud]
    assert state.workloads[deployed].deployment_state == DeploymentState.UNDEPLOYED
    assert state.workloads[resting].deployment_state == DeploymentState.UNDEPLOYED
    assert state.pools[cloud].deployment_state == DeploymentState.UNDEPLOYED
    with pytest.raises(AdminError, match="is not deployed"):
        state.undeploy_pool(cloud)


def test_undeploying_a_resting_workload_is_refused() -> None:
    state, cloud, _edge = make_state()
    workload = add_workload(state, cloud)
    with pytest.raises(AdminError, match="WorkloadAlreadyNotDeployed") as refused:
        state.undeploy_workload(workload)
    assert refused.value.status == 409


def test_admin_validation_names_the_problem() -> None:
    state, cloud, _edge = make_state()
    with pytest.raises(AdminError, match="does not exist") as missing:
        state.deploy_pool(new_rt_id())
    assert missing.value.status == 404
    with pytest.raises(AdminError, match="already exists"):
        state.create_pool(TENANT, "dup", PoolEnvironment.CLOUD, pool_rt_id=cloud)
    base = {
        "tenant_id": TENANT,
        "pool_rt_id": cloud,
        "workload_rt_id": new_rt_id(),
        "name": "w",
        "workload_type": WorkloadType.APPLICATION,
        "repository_url": "https://charts.example.invalid",
        "chart_name": "c",
    }
    with pytest.raises(AdminError, match="ingressEnabled requires a hostname"):
        state.add_workload(Workload(**{**base, "ingress_enabled": True}))
    with pytest.raises(AdminError, match="chartName must not be empty"):
        state.add_workload(Workload(**{**base, "chart_name": ""}))
    with pytest.raises(AdminError, match="belongs to tenant 'acme', not 'other'"):
        state.add_workload(Workload(**{**base, "tenant_id": "other"}))


def test_restart_forgets_connections_and_queues_but_keeps_pools_and_workloads() -> None:
    state, cloud, _edge = make_state()
    workload = add_workload(state, cloud)
    state.deploy_pool(cloud)
    state.connect("c1")
    state.register_operator("c1", True)
    state.register_pool("c1", TENANT, cloud)
    other = state.create_pool(TENANT, "other", PoolEnvironment.CLOUD).pool_rt_id
    queued = add_workload(state, other)
    state.deploy_workload(queued)
    state.deploy_workload(workload)
    state.restart()
    assert state.connections == {}
    assert state.queued == {}
    assert state.take_pushes() == []
    assert state.pools[cloud].deployment_state == DeploymentState.DEPLOYED
    # A pod that goes away does not mark its pools Offline.
    assert state.pools[cloud].communication_state == CommunicationState.ONLINE
    assert state.workloads[workload].deployment_state == DeploymentState.PENDING
