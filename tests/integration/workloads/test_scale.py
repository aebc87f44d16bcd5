"""The scale verb end to end: simulator ``ScaleWorkloadAsync`` → operator → the Deployment on the local
cluster → ``ReportWorkloadScaleStatusAsync`` recorded by the simulator (see conftest.py for the setup)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from communication_operator.contracts import ServerMethod
from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.scale import FIELD_MANAGER
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.waiting import eventually

from .conftest import TENANT, Deployer, DeployerFactory

pytestmark = pytest.mark.cluster

STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS
SCALE_STATUS = ServerMethod.REPORT_WORKLOAD_SCALE_STATUS


async def _acks(d: Deployer, workload: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    def enough(state: dict[str, Any]) -> list[dict[str, Any]] | None:
        acks = [r for r in state["scaleReports"] if r["workloadRtId"] == workload]
        return acks if len(acks) >= count else None

    return await d.sim.admin.wait_for(
        enough, timeout=timeout, interval=0.05, description=f"{count} scale ack(s)"
    )


async def _deployment(d: Deployer, workload: str) -> Any:
    return await client.AppsV1Api(d.api).read_namespaced_deployment(f"{d.release(workload)}-web", d.namespace)


async def test_scale_one_zero_one_patches_the_deployment_and_both_acks_arrive_in_order(
    deployer: DeployerFactory,
) -> None:
    metrics = OperatorMetrics()
    d = await deployer(metrics=metrics)
    workload = await d.deploy()
    assert (await d.wait_settled(workload))["deploymentState"] == "Deployed"
    assert (await _deployment(d, workload)).spec.replicas == 1

    await d.sim.admin.scale_workload(workload, 0)
    first = await _acks(d, workload, 1)
    assert (await _deployment(d, workload)).spec.replicas == 0
    await d.sim.admin.scale_workload(workload, 1)
    acks = await _acks(d, workload, 2)

    release = d.release(workload)
    assert first[0]["success"] is True
    assert [(a["replicas"], a["success"]) for a in acks] == [(0, True), (1, True)]
    assert acks[1]["statusMessage"] == f"Scaled Deployment/{release}-web of release {release} to 1 replica(s)"
    assert {a["tenantId"] for a in acks} == {TENANT}
    deployment = await _deployment(d, workload)
    assert deployment.spec.replicas == 1
    managers = {entry.manager for entry in deployment.metadata.managed_fields or []}
    assert FIELD_MANAGER in managers, managers
    text = metrics.exposition().decode()
    assert 'communication_operator_scale_requests_total{outcome="success"} 2.0' in text
    assert "communication_operator_scale_push_to_ack_seconds_count 2.0" in text


async def test_scale_during_a_deploy_applies_after_it(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule("example.invalid/slow*", "ready", delay=4)
    d = await deployer()
    workload = await d.deploy(values=[{"path": "image.repository", "value": "example.invalid/slow"}])
    await eventually(lambda: d.history(d.release(workload)), timeout=30, what="helm to create the release")

    await d.sim.admin.scale_workload(workload, 0)  # while helm --wait is still waiting for the pod
    acks = await _acks(d, workload, 1, timeout=60)

    calls = await d.sim.admin.calls()
    order = [c["method"] for c in calls if c["method"] in (STATUS, SCALE_STATUS)]
    assert order == [STATUS, SCALE_STATUS], order  # the deploy finished first, then the scale ran
    status = next(c for c in calls if c["method"] == STATUS)["arguments"][0]
    assert status["success"] is True, status
    assert acks[0]["success"] is True, acks
    assert (await _deployment(d, workload)).spec.replicas == 0  # the controller's last word


async def test_scale_of_a_missing_release_is_acknowledged_as_failed(deployer: DeployerFactory) -> None:
    metrics = OperatorMetrics()
    d = await deployer(metrics=metrics)
    workload = await d.create()  # known to the controller, never deployed

    await d.sim.admin.scale_workload(workload, 1)
    acks = await _acks(d, workload, 1)

    release = d.release(workload)
    assert acks[0]["success"] is False
    assert acks[0]["replicas"] == 1
    assert acks[0]["statusMessage"] == (
        f"No Deployments found for release {release} in namespace {d.namespace}: the release does not exist"
    )
    text = metrics.exposition().decode()
    assert 'communication_operator_scale_requests_total{outcome="not_found"} 1.0' in text


async def test_scale_of_a_release_without_deployments_says_there_is_nothing_to_scale(
    deployer: DeployerFactory,
) -> None:
    d = await deployer()
    workload = await d.deploy(chart_name="job")
    await d.wait_settled(workload)

    await d.sim.admin.scale_workload(workload, 0)
    acks = await _acks(d, workload, 1)

    assert acks[0]["success"] is False
    assert acks[0]["statusMessage"].endswith("the release has no Deployment or StatefulSet to scale")
