"""The local cluster works with kubernetes-asyncio, helm 4, helm 3 and kubectl."""

import json

import pytest
from kubernetes_asyncio import client

from octo_devtools.testing.cluster import KubeCluster

pytestmark = pytest.mark.cluster


async def test_kubeconfig_lists_namespaces_with_kubernetes_asyncio(
    kube_api: client.ApiClient, namespace: str
) -> None:
    names = {ns.metadata.name for ns in (await client.CoreV1Api(kube_api).list_namespace()).items}
    assert {"default", "kube-system", namespace} <= names
    version = await client.VersionApi(kube_api).get_code()
    assert version.git_version == "v1.20.2"


def test_kube_controller_manager_is_running(kube_cluster: KubeCluster) -> None:
    # The serviceaccount controller creates `default` in every namespace.
    status, body = kube_cluster.rest().get("/api/v1/namespaces/kube-system/serviceaccounts/default")
    assert status == 200, body


@pytest.mark.parametrize(("which", "expected"), [("helm", "v4.3.1"), ("helm3", "v3.19.0")])
def test_helm_version_and_list_work_with_the_env(
    kube_cluster: KubeCluster, namespace: str, which: str, expected: str
) -> None:
    helm = getattr(kube_cluster, which)
    version = kube_cluster.helm_run("version", "--short", helm=helm, check=True)
    assert version.stdout.startswith(expected)
    listed = kube_cluster.helm_run("list", "-n", namespace, "-o", "json", helm=helm, check=True)
    assert json.loads(listed.stdout) == []


def test_env_isolates_helm_and_kubectl_homes(kube_cluster: KubeCluster) -> None:
    env = kube_cluster.env
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME", "KUBECACHEDIR"):
        assert env[var].startswith(str(kube_cluster.state_dir)), var
    assert env["KUBECONFIG"] == str(kube_cluster.kubeconfig)
    assert env["PATH"].split(":")[0] == str(kube_cluster.helm.parent)


def test_kubectl_reaches_the_cluster(kube_cluster: KubeCluster) -> None:
    import subprocess

    result = subprocess.run(
        [str(kube_cluster.kubectl), "get", "namespace", "default", "-o", "name"],
        env=kube_cluster.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "namespace/default"
