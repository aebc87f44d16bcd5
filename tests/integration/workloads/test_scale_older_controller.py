"""A controller that pushes scales but does not know ``ReportWorkloadScaleStatusAsync`` (a build between the
two changes): the operator scales anyway, warns once, and keeps the connection and the other reports."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from kubernetes_asyncio import client

from communication_operator.contracts import ServerMethod
from octo_devtools.controller_sim import RunningSimulator, running_simulator
from octo_devtools.testing.simulator import fast_options
from octo_devtools.testing.waiting import eventually

from .conftest import DeployerFactory

pytestmark = pytest.mark.cluster

ACK = ServerMethod.REPORT_WORKLOAD_SCALE_STATUS


@pytest_asyncio.fixture
async def controller_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(fast_options(missing_methods=frozenset({ACK}))) as sim:
        yield sim


async def test_an_ack_the_controller_does_not_know_is_warned_about_once_and_scaling_goes_on(
    deployer: DeployerFactory, kube_api: client.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    d = await deployer()
    workload = await d.deploy()
    assert (await d.wait_settled(workload))["deploymentState"] == "Deployed"
    apps = client.AppsV1Api(kube_api)
    name = f"{d.release(workload)}-web"

    async def replicas_are(count: int) -> bool:
        deployment = await apps.read_namespaced_deployment(name, d.namespace)
        return bool(deployment.spec.replicas == count)

    await d.sim.admin.scale_workload(workload, 0)
    await eventually(lambda: replicas_are(0), timeout=20, what="scale to 0")
    await d.sim.admin.wait_for_call(ACK, count=1, timeout=10)
    await d.sim.admin.scale_workload(workload, 1)
    await eventually(lambda: replicas_are(1), timeout=20, what="scale to 1")
    await d.sim.admin.wait_for_call(ACK, count=2, timeout=10)
    second = await d.create("second")
    await d.sim.admin.deploy_workload(second)
    assert (await d.wait_settled(second))["deploymentState"] == "Deployed"

    refusals = [
        r for r in caplog.records if "the controller refused" in r.getMessage() and ACK in r.getMessage()
    ]
    assert [r.levelno for r in refusals] == [logging.WARNING, logging.DEBUG], refusals
    assert "Method does not exist" in refusals[0].getMessage()
    assert d.hub.connected
