"""Uninstall and the per-release Secret with the real helm on the local cluster (issue 13 items 9 and 10).

The test chart's optional pre-delete hook Job makes ``helm uninstall`` wait for a pod the fake kubelet
runs (for a while, or forever), so an uninstall can be caught in flight.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
from typing import Any

import pytest
from kubernetes_asyncio import client

from communication_operator.contracts import ServerMethod
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.waiting import eventually

from .conftest import TENANT, Deployer, DeployerFactory

pytestmark = pytest.mark.cluster

PROGRESS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS
HOOK = [{"path": "preDeleteHook.enabled", "value": "true"}]


async def statuses(d: Deployer, workload: str) -> list[str]:
    return [text for method, text, _ in await d.reports(workload) if method == STATUS]


async def newest_status(d: Deployer, release: str) -> str | None:
    history = await d.history(release)
    return str(history[-1]["status"]) if history else None


async def deployed_with_hook(d: Deployer) -> str:
    workload = await d.deploy(values=HOOK)
    assert (await d.wait_settled(workload))["deploymentState"] == "Deployed"
    return workload


async def wait_uninstalling(d: Deployer, release: str) -> None:
    async def uninstalling() -> bool:
        return await newest_status(d, release) == "uninstalling"

    await eventually(uninstalling, timeout=30, what=f"{release} uninstalling (pre-delete hook running)")


async def test_a_newer_deploy_waits_for_a_running_uninstall_instead_of_killing_it(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule("example.invalid/pre-delete*", "run-to-completion", run_seconds=6)
    d = await deployer()
    workload = await deployed_with_hook(d)
    release = d.release(workload)

    await d.sim.admin.undeploy_workload(workload)
    await wait_uninstalling(d, release)
    await d.sim.admin.deploy_workload(workload)  # the user deploys again while helm still uninstalls

    await eventually(lambda: _count(statuses(d, workload), 2), timeout=90, what="the second deploy's status")
    second = (await statuses(d, workload))[1]
    assert second.startswith("Deployed"), second
    assert await newest_status(d, release) == "deployed"


async def test_shutdown_lets_a_running_uninstall_finish(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule("example.invalid/pre-delete*", "run-to-completion", run_seconds=4)
    d = await deployer()
    workload = await deployed_with_hook(d)
    release = d.release(workload)

    await d.sim.admin.undeploy_workload(workload)
    await wait_uninstalling(d, release)
    await d.service.shutdown()

    assert await d.history(release) == [], "the release was left behind (uninstalling)"


@pytest.mark.parametrize("helm", ["helm", "helm3"])
async def test_a_release_left_uninstalling_by_a_killed_helm_is_recovered_on_the_next_deploy(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet, helm: str
) -> None:
    fake_kubelet.add_rule("example.invalid/pre-delete*", "ready")  # a hook that never completes
    d = await deployer(helm=helm)
    workload = await deployed_with_hook(d)
    release = d.release(workload)
    # An operator process killed (SIGKILL) during `helm uninstall`: helm dies with it.
    process = await asyncio.create_subprocess_exec(
        str(d.helm_binary), "uninstall", release, "--namespace", d.namespace,
        env=d.helm_env, stdout=-1, stderr=-1, start_new_session=True,
    )  # fmt: skip
    await wait_uninstalling(d, release)
    os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
    fake_kubelet.clear_rules()
    fake_kubelet.add_rule("example.invalid/pre-delete*", "run-to-completion", run_seconds=0.5)

    await d.sim.admin.deploy_workload(workload)
    await eventually(lambda: _count(statuses(d, workload), 2), timeout=90, what="the second deploy's status")

    second = (await statuses(d, workload))[1]
    assert second.startswith("Deployed"), second
    progress = [text for method, text, _ in await d.reports(workload) if method == PROGRESS]
    assert any(
        "stuck in uninstalling" in text and "finished the interrupted uninstall" in text for text in progress
    ), progress
    assert await newest_status(d, release) == "deployed"


async def test_a_failed_upgrade_leaves_the_previous_secret_for_the_rolled_back_pods(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule("example.invalid/broken*", "image-pull-backoff")
    d = await deployer()
    workload = await d.deploy(values=[{"path": "oauth.clientSecret", "value": "first-key", "isSecret": True}])
    assert (await d.wait_settled(workload))["deploymentState"] == "Deployed"
    release = d.release(workload)
    before = await _secret_data(d, f"{release}-octo-secrets")
    assert before["oauth.clientSecret"] == "first-key"

    # The next version drops the secret override and cannot pull its image: helm rolls back.
    await d.sim.admin.push("WorkloadDeployedAsync", [_dto(d, workload, "example.invalid/broken")])
    await eventually(lambda: _count(statuses(d, workload), 2), timeout=90, what="the failed upgrade's status")

    assert (await d.state_of(workload))["deploymentState"] == "Error"
    assert await _secret_data(d, f"{release}-octo-secrets") == before


def _dto(d: Deployer, workload: str, image: str) -> dict[str, Any]:
    return {
        "tenantId": TENANT,
        "poolRtId": d.pool_rt_id,
        "workloadName": "web",
        "workloadRtId": workload,
        "workloadType": 0,
        "repositoryUrl": d.repo.url,
        "chartName": "web",
        "chartVersion": "",
        "valuesYaml": "",
        "values": [{"path": "image.repository", "value": image, "isSecret": False}],
    }


async def _secret_data(d: Deployer, name: str) -> dict[str, str]:
    secret = await client.CoreV1Api(d.api).read_namespaced_secret(name, d.namespace)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


async def _count(texts: Any, count: int) -> bool:
    return len(await texts) >= count


async def test_the_release_secret_is_deleted_even_when_helm_uninstall_fails(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 12: the Secret's plaintext values must not outlive the workload, whatever uninstall says.
    fake_kubelet.add_rule("example.invalid/pre-delete*", "run-to-completion", exit_code=1, run_seconds=0.5)
    d = await deployer()
    workload = await d.deploy(
        values=[*HOOK, {"path": "oauth.clientSecret", "value": "k3y", "isSecret": True}]
    )
    assert (await d.wait_settled(workload))["deploymentState"] == "Deployed"
    name = f"{d.release(workload)}-octo-secrets"
    assert await _secret_data(d, name)

    await d.sim.admin.undeploy_workload(workload)

    async def uninstall_failed() -> str | None:
        messages = [record.getMessage() for record in caplog.records]
        return next((m for m in messages if m.startswith("undeploy of workload") and "failed" in m), None)

    failure = await eventually(uninstall_failed, timeout=90, what="helm uninstall to fail")
    assert "helm uninstall" in failure
    with pytest.raises(client.ApiException) as gone:
        await client.CoreV1Api(d.api).read_namespaced_secret(name, d.namespace)
    assert gone.value.status == 404


async def test_a_hung_uninstall_is_stopped_by_the_watchdog_and_the_next_deploy_recovers(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet, caplog: pytest.LogCaptureFixture
) -> None:
    # Review finding 12: a real helm uninstall held forever by its pre-delete hook. The watchdog (here
    # 8 s instead of 360 s) stops it; the undeploy ends, the release is left `uninstalling`, and the next
    # deploy finishes it.
    fake_kubelet.add_rule("example.invalid/pre-delete*", "ready")  # a hook that never completes
    d = await deployer()
    workload = await deployed_with_hook(d)
    release = d.release(workload)
    d.helm.operation_deadline = 8.0

    await d.sim.admin.undeploy_workload(workload)
    await wait_uninstalling(d, release)

    async def undeploy_given_up() -> str | None:
        messages = [record.getMessage() for record in caplog.records]
        return next((m for m in messages if m.startswith("undeploy of workload") and "failed" in m), None)

    failure = await eventually(undeploy_given_up, timeout=60, what="the watchdog to stop helm uninstall")
    assert "no result after 8 s; stopped by the operator" in failure
    assert d.service.busy_releases() == []
    assert await newest_status(d, release) == "uninstalling"

    d.helm.operation_deadline = 360.0
    fake_kubelet.clear_rules()
    fake_kubelet.add_rule("example.invalid/pre-delete*", "run-to-completion", run_seconds=0.5)
    await d.sim.admin.deploy_workload(workload)
    await eventually(lambda: _count(statuses(d, workload), 2), timeout=90, what="the second deploy's status")

    second = (await statuses(d, workload))[1]
    assert second.startswith("Deployed"), second
    assert await newest_status(d, release) == "deployed"
