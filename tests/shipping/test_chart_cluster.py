"""The operator chart against the real local kube-apiserver (1.20): every rendered manifest passes a
server-side dry-run, and `helm install` creates an operator Deployment whose pod the API server admits.

The cluster has no kubelet, so the pod stays Pending; what is tested is that the API server (schema,
admission, RBAC escalation checks) accepts every object the chart produces.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from octo_devtools.testing.cluster import KubeCluster

from .chart import CENTRAL_VALUES, CHART, EDGE_VALUES, helm_env, merged, run_helm, template, write_values

pytestmark = pytest.mark.cluster

POD_APPEAR_TIMEOUT_S = 60.0


def _values_for(mode: str, namespace: str) -> dict[str, Any]:
    """The representative values, pointed at the test's namespace (Roles need existing namespaces)."""
    if mode == "central":
        return merged(CENTRAL_VALUES, {"operator": {"poolNamespace": namespace}})
    return merged(EDGE_VALUES, {"operator": {"poolNamespace": namespace, "watchNamespace": namespace}})


def _release(namespace: str) -> str:
    # Cluster-scoped objects (ClusterRole, ClusterRoleBinding) carry the release name: keep it unique.
    return f"op-{namespace.rsplit('-', 1)[-1]}"


@pytest.mark.parametrize("mode", ["central", "edge"])
def test_every_rendered_manifest_passes_a_server_side_dry_run(
    mode: str, kube_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    manifests = template(
        _values_for(mode, namespace), tmp_path, release=_release(namespace), namespace=namespace
    )
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(manifests))
    result = subprocess.run(
        [str(kube_cluster.kubectl), "apply", "--dry-run=server", "-o", "name", "-f", str(path)],
        capture_output=True,
        text=True,
        env=helm_env(tmp_path, kube_cluster.env),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"the API server rejected rendered manifests:\n{result.stderr}"
    accepted = sorted(line for line in result.stdout.splitlines() if line)
    expected = sorted(f"{_resource_name(m)}/{m['metadata']['name']}" for m in manifests)
    assert accepted == expected


def _resource_name(manifest: dict[str, Any]) -> str:
    # kubectl -o name prints <plural>.<group> (core group: just the plural).
    plural = {
        "ServiceAccount": "serviceaccount",
        "Secret": "secret",
        "Service": "service",
        "Deployment": "deployment.apps",
        "ClusterRole": "clusterrole.rbac.authorization.k8s.io",
        "ClusterRoleBinding": "clusterrolebinding.rbac.authorization.k8s.io",
        "Role": "role.rbac.authorization.k8s.io",
        "RoleBinding": "rolebinding.rbac.authorization.k8s.io",
        "CustomResourceDefinition": "customresourcedefinition.apiextensions.k8s.io",
    }
    return plural[manifest["kind"]]


@pytest.mark.parametrize(("mode", "which"), [("central", "helm4"), ("edge", "helm3")])
def test_helm_install_creates_an_operator_pod_the_api_server_accepts(
    mode: str, which: str, kube_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    helm = kube_cluster.helm if which == "helm4" else kube_cluster.helm3
    release = _release(namespace)
    values = write_values(tmp_path, _values_for(mode, namespace))
    install = run_helm(
        helm,
        # --take-ownership: other tests may already have created the CommunicationPool CRD in this cluster.
        ["install", release, str(CHART), "--namespace", namespace, "-f", str(values), "--take-ownership"],
        tmp_path,
        kube_cluster.env,
    )
    try:
        assert install.returncode == 0, f"helm install failed:\n{install.stderr}"
        # NOTES.txt tells the user how to check the connection.
        assert "communication-operator check" in install.stdout
        assert "kubectl get cpools" in install.stdout

        rest = kube_cluster.rest()
        deployment_name = f"{release}-communication-operator"
        status, deployment = rest.request(
            "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment_name}"
        )
        assert status == 200, deployment
        assert deployment["spec"]["strategy"]["type"] == "Recreate"

        pod = _wait_for_operator_pod(kube_cluster, namespace, release)
        spec = pod["spec"]
        assert spec["serviceAccountName"] == deployment_name
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
        assert (
            spec["terminationGracePeriodSeconds"]
            == deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        )
        env = {e["name"] for e in spec["containers"][0]["env"]}
        assert "OPERATOR__COMMUNICATIONCONTROLLERURI" in env

        status, crd = rest.request(
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/communicationpools.octo-mesh.meshmakers.io",
        )
        assert status == 200, crd
    finally:
        uninstall = run_helm(
            helm, ["uninstall", release, "--namespace", namespace], tmp_path, kube_cluster.env
        )
        assert uninstall.returncode == 0 or install.returncode != 0, uninstall.stderr

    # The CRD is kept on uninstall (helm.sh/resource-policy: keep): deleting it would delete every pool.
    status, _ = kube_cluster.rest().request(
        "GET",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/communicationpools.octo-mesh.meshmakers.io",
    )
    assert status == 200, "helm uninstall deleted the CommunicationPool CRD"


def _wait_for_operator_pod(kube_cluster: KubeCluster, namespace: str, release: str) -> dict[str, Any]:
    """The pod the ReplicaSet controller creates; on timeout, fail with the ReplicaSet's events."""
    rest = kube_cluster.rest()
    selector = f"app.kubernetes.io/instance={release}"
    deadline = time.monotonic() + POD_APPEAR_TIMEOUT_S
    while time.monotonic() < deadline:
        status, pods = rest.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
        assert status == 200, pods
        if pods["items"]:
            assert len(pods["items"]) == 1, "the operator must run as a single pod"
            return dict(pods["items"][0])
        time.sleep(0.5)
    _, events = rest.request("GET", f"/api/v1/namespaces/{namespace}/events")
    messages = [f"{e['involvedObject']['kind']} {e['reason']}: {e['message']}" for e in events["items"]]
    pytest.fail(f"no operator pod after {POD_APPEAR_TIMEOUT_S:.0f}s; events:\n" + "\n".join(messages))
