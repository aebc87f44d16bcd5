"""The integration scenarios against a real cluster (kind): the operator image installed with its
chart, pools and workloads driven through the controller simulator on the host, real kubelets pulling
real (and non-existent) images. Skipped, with the reason printed, unless E2E_KUBECONFIG is set."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from octo_devtools.controller_sim.admin_client import AdminClient
from octo_devtools.demo import StoryTarget, all_passed, render_summary, run_story, steps
from tests.e2e.conftest import OPERATOR_NAMESPACE, RELEASE, E2EEnvironment

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


async def play(target: StoryTarget, *keys: str) -> None:
    lines: list[str] = []
    results = await run_story(target, lines.append, steps=steps(*keys))
    summary = render_summary(results)
    print("\n".join([*lines, "", summary]))
    assert all_passed(results), "\n".join([*lines, "", summary])


async def test_operator_chart_runs_the_loaded_image_and_connects_in_central_mode(
    e2e: E2EEnvironment, e2e_kube: client.ApiClient, e2e_admin: AdminClient
) -> None:
    pods = await client.CoreV1Api(e2e_kube).list_namespaced_pod(
        OPERATOR_NAMESPACE, label_selector=f"app.kubernetes.io/instance={RELEASE}"
    )
    assert len(pods.items) == 1, [p.metadata.name for p in pods.items]
    pod = pods.items[0]
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    assert conditions.get("Ready") == "True", pod.status
    assert pod.spec.containers[0].image.endswith(e2e.image), pod.spec.containers[0].image
    state = await e2e_admin.wait_for(
        lambda s: [o for o in s["operators"] if o["autoManagePools"] is True],
        timeout=60,
        description="the operator registered in central mode",
    )
    assert state


async def test_pool_deploy_creates_the_resource_online_and_undeploy_removes_it(
    story_target: StoryTarget,
) -> None:
    await play(story_target, "pool", "undeploy-pool")


async def test_good_workload_deploys_with_a_real_kubelet_and_undeploys(story_target: StoryTarget) -> None:
    await play(story_target, "pool", "good-workload", "undeploy-workloads", "undeploy-pool")


async def test_bogus_image_reports_real_pull_errors_live_then_fails(story_target: StoryTarget) -> None:
    await play(story_target, "pool", "bad-image", "undeploy-pool")


async def test_controller_restart_re_registers_pool_and_deployed_workload(story_target: StoryTarget) -> None:
    await play(story_target, "pool", "good-workload", "restart", "undeploy-workloads", "undeploy-pool")
