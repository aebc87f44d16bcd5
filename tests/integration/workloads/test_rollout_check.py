"""The rollout check's reader against the local cluster's Deployment controller: a Deployment whose pod
never becomes Ready is named with what is missing; one that runs its spec is not."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client

from communication_operator.workloads.replicas import INSTANCE_LABEL
from communication_operator.workloads.rollout import KubeRolloutReader
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.waiting import eventually

RELEASE = "rollout-check"


def deployment(name: str, image: str) -> dict[str, Any]:
    labels = {INSTANCE_LABEL: RELEASE, "app": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


async def test_the_reader_names_the_deployment_whose_pod_is_not_ready_and_only_that_one(
    kube_api: client.ApiClient, namespace: str, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule("example.test/never-ready:*", "not-ready")
    fake_kubelet.add_rule("example.test/web-ready:*", "ready", delay=0.2)
    apps = client.AppsV1Api(kube_api)
    reader = KubeRolloutReader(kube_api)
    await apps.create_namespaced_deployment(namespace, deployment("good", "example.test/web-ready:1"))
    await apps.create_namespaced_deployment(namespace, deployment("stuck", "example.test/never-ready:1"))

    async def settled_on_stuck() -> list[str] | None:
        unfinished = await reader.unfinished_rollouts(namespace, RELEASE)
        return (
            unfinished if unfinished == ["Deployment stuck: 1 of 1 replica(s) updated, 0 available"] else None
        )

    await eventually(settled_on_stuck, timeout=60, interval=0.2, what="only the stuck Deployment unfinished")
    assert await reader.unfinished_rollouts(namespace, "another-release") == []
