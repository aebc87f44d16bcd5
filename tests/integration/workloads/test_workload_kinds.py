"""Adapter pools (workloadType 2) and hibernated deploys, with the real helm on the local cluster."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.workloads.deployed import HelmReleaseWorkloads
from communication_operator.workloads.values import ClusterSecrets
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.waiting import eventually

from .conftest import BROKER_PASSWORD, TENANT, DeployerFactory

pytestmark = pytest.mark.cluster

DB_USER_PASSWORD = "db-user-pa55-for-tenants"
CLUSTER_SECRETS = ClusterSecrets(
    mongodb_user_password=DB_USER_PASSWORD,
    mongodb_admin_password="db-admin-pa55-for-tenants",
    stream_data_password="stream-pa55-for-tenants",
)


@pytest.fixture
async def platform_namespace(namespace: str, kube_api: client.ApiClient) -> AsyncIterator[str]:
    core = client.CoreV1Api(kube_api)
    name = f"{namespace}-platform"[:63]
    await core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    kubelet = FakeKubelet(kube_api, namespace=name)  # the fixture's kubelet serves the test namespace only
    await kubelet.start()
    await kubelet.wait_synced()
    try:
        yield name
    finally:
        await kubelet.stop()
    await core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
    await core.delete_namespace(name)


async def _secret_keys(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, str]:
    secret = await core.read_namespaced_secret(name, namespace)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


async def test_adapter_pool_installs_into_the_platform_namespace_without_cluster_secrets(
    deployer: DeployerFactory, kube_api: client.ApiClient, platform_namespace: str
) -> None:
    d = await deployer(platform_namespace=platform_namespace, cluster_secrets=CLUSTER_SECRETS)
    pool = await d.deploy("pool", workload_type="AdapterPool", receives_cluster_secrets=True)
    adapter = await d.deploy("adapter", workload_type="Adapter", receives_cluster_secrets=True)

    pool_state = await d.wait_settled(pool)
    adapter_state = await d.wait_settled(adapter)

    assert pool_state["deploymentState"] == "Deployed", pool_state
    assert pool_state["workloadType"] == "AdapterPool"
    assert adapter_state["deploymentState"] == "Deployed", adapter_state
    core = client.CoreV1Api(kube_api)
    apps = client.AppsV1Api(kube_api)
    pool_release, adapter_release = d.release(pool), d.release(adapter)
    await apps.read_namespaced_deployment(f"{pool_release}-web", platform_namespace)
    with pytest.raises(ApiException) as absent:
        await apps.read_namespaced_deployment(f"{pool_release}-web", d.namespace)
    assert absent.value.status == 404
    pool_secret = await _secret_keys(core, platform_namespace, f"{pool_release}-octo-secrets")
    assert pool_secret == {"secrets.rabbitmq": BROKER_PASSWORD}
    # The same flag on an ordinary adapter does inject them: the setup could have failed the check above.
    adapter_secret = await _secret_keys(core, d.namespace, f"{adapter_release}-octo-secrets")
    assert adapter_secret["secrets.databaseUser"] == DB_USER_PASSWORD

    # The reverse sync names both workloads of the pool, wherever their releases live.
    listed = await HelmReleaseWorkloads(
        kube_api, d.namespace, platform_namespace=platform_namespace
    ).workload_rt_ids_by_pool()
    assert listed[(TENANT, d.pool_rt_id)] == sorted([pool, adapter])

    await d.sim.admin.undeploy_workload(pool)

    async def uninstalled() -> bool:
        return not await _releases_in(d, platform_namespace)

    await eventually(uninstalled, timeout=30, what="the adapter pool's release to be uninstalled")
    await d.service.wait_idle()
    with pytest.raises(ApiException) as deleted:
        await core.read_namespaced_secret(f"{pool_release}-octo-secrets", platform_namespace)
    assert deleted.value.status == 404


async def test_adapter_pool_without_a_platform_namespace_goes_to_the_pool_namespace(
    deployer: DeployerFactory, kube_api: client.ApiClient
) -> None:
    d = await deployer()
    pool = await d.deploy("pool", workload_type=2)

    assert (await d.wait_settled(pool))["deploymentState"] == "Deployed"
    await client.AppsV1Api(kube_api).read_namespaced_deployment(f"{d.release(pool)}-web", d.namespace)


async def _releases_in(d: object, namespace: str) -> str:
    code, out, _ = await d.helm_cmd("list", "-n", namespace, "-q")  # type: ignore[attr-defined]
    assert code == 0
    return str(out.strip())


@pytest.mark.parametrize("helm", ["helm", "helm3"])
async def test_a_hibernated_deploy_has_zero_replicas(
    deployer: DeployerFactory, kube_api: client.ApiClient, helm: str
) -> None:
    d = await deployer(helm=helm)
    workload = await d.deploy(
        hibernated=True, values=[{"path": "replicaCount", "value": "3", "isSecret": False}]
    )

    assert (await d.wait_settled(workload))["deploymentState"] == "Deployed"
    deployment = await client.AppsV1Api(kube_api).read_namespaced_deployment(
        f"{d.release(workload)}-web", d.namespace
    )
    assert deployment.spec.replicas == 0
