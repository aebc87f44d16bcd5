"""Replica counts across upgrades (workloads/replicas.py): helm 4's server-side apply and our scale's field
ownership of ``spec.replicas``, with the real helm on the local cluster (see conftest.py for the setup)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from communication_operator.contracts import ServerMethod
from octo_devtools.testing.waiting import eventually

from .conftest import Deployer, DeployerFactory

pytestmark = pytest.mark.cluster

STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS


async def _replicas(d: Deployer, workload: str) -> int:
    apps = client.AppsV1Api(d.api)
    deployment = await apps.read_namespaced_deployment(f"{d.release(workload)}-web", d.namespace)
    return int(deployment.spec.replicas)


async def _statuses(d: Deployer, workload: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        calls = await d.sim.admin.calls(STATUS)
        found = [c["arguments"][0] for c in calls if c["arguments"][0]["workloadRtId"] == workload]
        return found if len(found) >= count else None

    return await eventually(enough, timeout=timeout, what=f"{count} status report(s)")


async def _deployed_then_scaled(d: Deployer, replicas: int) -> str:
    workload = await d.deploy()
    assert (await _statuses(d, workload, 1))[0]["success"] is True
    await d.sim.admin.scale_workload(workload, replicas)
    await d.sim.admin.wait_for(
        lambda s: any(r["workloadRtId"] == workload for r in s["scaleReports"]), timeout=30
    )
    assert await _replicas(d, workload) == replicas
    return workload


async def test_on_helm_4_a_redeploy_after_a_scale_keeps_the_scaled_count(deployer: DeployerFactory) -> None:
    d = await deployer(helm="helm")
    workload = await _deployed_then_scaled(d, 2)

    await d.sim.admin.deploy_workload(workload)
    statuses = await _statuses(d, workload, 2)

    assert statuses[1]["success"] is True, statuses[1]
    assert await _replicas(d, workload) == 2


async def test_on_helm_3_a_redeploy_restores_the_charts_count(deployer: DeployerFactory) -> None:
    # helm 3 merges three ways and resets the count; no pin, no conflict (as upstream's helm 3 builds).
    d = await deployer(helm="helm3")
    workload = await _deployed_then_scaled(d, 2)

    await d.sim.admin.deploy_workload(workload)
    statuses = await _statuses(d, workload, 2)

    assert statuses[1]["success"] is True, statuses[1]
    assert await _replicas(d, workload) == 1


async def test_on_helm_4_a_hibernated_redeploy_after_a_scale_to_zero_does_not_conflict(
    deployer: DeployerFactory,
) -> None:
    d = await deployer(helm="helm")
    workload = await _deployed_then_scaled(d, 0)

    await d.sim.admin.update_workload(workload, hibernated=True)
    await d.sim.admin.deploy_workload(workload)
    statuses = await _statuses(d, workload, 2)

    assert statuses[1]["success"] is True, statuses[1]
    assert await _replicas(d, workload) == 0


async def test_on_helm_4_waking_by_redeploy_after_a_scale_to_zero_is_explained_and_forced_on_request(
    deployer: DeployerFactory,
) -> None:
    d = await deployer(helm="helm")
    workload = await _deployed_then_scaled(d, 0)

    await d.sim.admin.deploy_workload(workload)  # not hibernated, live count 0: no pin, a conflict
    failed = (await _statuses(d, workload, 2))[1]

    assert failed["success"] is False
    message = failed["statusMessage"]
    assert message.startswith(
        f"helm's server-side apply of Deployment {d.namespace}/{d.release(workload)}-web conflicts with "
        'field manager "octo-communication-operator" over .spec.replicas: '
    ), message
    assert "OPERATOR__HELM__FORCECONFLICTS=true" in message
    assert await _replicas(d, workload) == 0


async def test_with_force_conflicts_helm_4_takes_the_replicas_back_on_redeploy(
    deployer: DeployerFactory,
) -> None:
    d = await deployer(helm="helm", force_conflicts=True)
    workload = await _deployed_then_scaled(d, 0)

    await d.sim.admin.deploy_workload(workload)
    statuses = await _statuses(d, workload, 2)

    assert statuses[1]["success"] is True, statuses[1]
    assert await _replicas(d, workload) == 1
