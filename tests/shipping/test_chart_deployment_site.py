"""The chart ships the DeploymentSite CRD beside the CommunicationPool CRD, and grants the operator
what it does with DeploymentSites; on the local API server (1.20) both CRDs install, validate
DeploymentSites and survive an uninstall."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from octo_devtools.testing.cluster import KubeCluster

from .chart import (
    CANONICAL_CRD,
    CANONICAL_DEPLOYMENT_SITE_CRD,
    CENTRAL_VALUES,
    CHART,
    CHART_DEPLOYMENT_SITE_CRD,
    EDGE_VALUES,
    by_kind,
    merged,
    run_helm,
    template,
    toolchain,
    write_values,
)

GROUP = "octo-mesh.meshmakers.io"
CRDS = {
    "communicationpools.octo-mesh.meshmakers.io": CANONICAL_CRD,
    "deploymentsites.octo-mesh.meshmakers.io": CANONICAL_DEPLOYMENT_SITE_CRD,
}
RT_ID = "65f0c0ffee0000000000aaaa"


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_chart_copy_of_the_deployment_site_crd_is_byte_identical() -> None:
    assert CHART_DEPLOYMENT_SITE_CRD.read_bytes() == CANONICAL_DEPLOYMENT_SITE_CRD.read_bytes(), (
        "sync it with: cp crds/deploymentsite.yaml charts/communication-operator/files/crds/"
    )


def test_both_crds_are_rendered_from_the_canonical_files(tmp_path: Path) -> None:
    rendered = {
        m["metadata"]["name"]: m
        for m in by_kind(template(CENTRAL_VALUES, tmp_path), "CustomResourceDefinition")
    }
    assert set(rendered) == set(CRDS)
    for name, path in CRDS.items():
        assert rendered[name] == yaml.safe_load(path.read_text()), name
        assert rendered[name]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    without = template(merged(CENTRAL_VALUES, {"crds": {"install": False}}), tmp_path)
    assert not by_kind(without, "CustomResourceDefinition")


@pytest.mark.parametrize(("values", "role_kind"), [(CENTRAL_VALUES, "ClusterRole"), (EDGE_VALUES, "Role")])
def test_the_operator_may_do_with_deploymentsites_what_it_does_with_communicationpools(
    values: dict[str, Any], role_kind: str, tmp_path: Path
) -> None:
    role = by_kind(template(values, tmp_path), role_kind)[0]
    grants = _grants(role["rules"])
    pool_grants = {
        (v, r.replace("communicationpools", "")) for g, r, v in grants if r.startswith("communicationpools")
    }
    site_grants = {
        (v, r.replace("deploymentsites", "")) for g, r, v in grants if r.startswith("deploymentsites")
    }
    assert pool_grants
    assert site_grants == pool_grants
    assert (GROUP, "deploymentsites/status", "patch") in grants
    assert (GROUP, "deploymentsites/finalizers", "update") in grants
    for verb in ("get", "list", "watch", "create", "delete"):
        assert (GROUP, "deploymentsites", verb) in grants


def test_notes_name_both_kinds(tmp_path: Path) -> None:
    values = write_values(tmp_path, merged(EDGE_VALUES, {"crds": {"install": False}}))
    result = run_helm(
        toolchain().helm, ["install", "x", str(CHART), "-f", str(values), "--dry-run"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "kubectl get cpools,dsites" in result.stdout
    assert "deploymentsites.octo-mesh.meshmakers.io" in result.stdout


# --- on the local API server ----------------------------------------------------------------------------


@pytest.mark.cluster
def test_helm_install_creates_both_crds_that_validate_and_are_kept(
    kube_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    release = f"ds-{namespace.rsplit('-', 1)[-1]}"
    values = write_values(tmp_path, merged(CENTRAL_VALUES, {"operator": {"poolNamespace": namespace}}))
    install = run_helm(
        kube_cluster.helm,
        # --take-ownership: other tests may already have created the CRDs in this cluster.
        ["install", release, str(CHART), "--namespace", namespace, "-f", str(values), "--take-ownership"],
        tmp_path,
        kube_cluster.env,
    )
    assert install.returncode == 0, f"helm install failed:\n{install.stderr}"
    rest = kube_cluster.rest()
    try:
        for name in CRDS:
            status, crd = rest.request(
                "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            )
            assert status == 200, crd
        sites = f"/apis/{GROUP}/v1/namespaces/{namespace}/deploymentsites"
        status, created = _create_when_served(
            rest, sites, _site("valid", {"tenantId": "acme", "deploymentSiteRtId": RT_ID})
        )
        assert status == 201, created
        assert created["spec"] == {"tenantId": "acme", "deploymentSiteRtId": RT_ID}
        status, refused = rest.request(
            "POST", sites, _site("bad-id", {"tenantId": "acme", "deploymentSiteRtId": RT_ID.upper()})
        )
        assert status == 422, refused
        assert "deploymentSiteRtId" in refused["message"]
        status, refused = rest.request(
            "POST", sites, _site("pool-era-spec", {"tenantId": "acme", "poolRtId": RT_ID})
        )
        assert status == 422, refused
        status, deleted = rest.request("DELETE", f"{sites}/valid")
        assert status == 200, deleted
    finally:
        uninstall = run_helm(
            kube_cluster.helm, ["uninstall", release, "--namespace", namespace], tmp_path, kube_cluster.env
        )
        assert uninstall.returncode == 0, uninstall.stderr
    for name in CRDS:
        status, _ = kube_cluster.rest().request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )
        assert status == 200, f"helm uninstall deleted {name}"


def _site(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "DeploymentSite", "metadata": {"name": name}, "spec": spec}


def _create_when_served(rest: Any, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST once the new resource is served (a CRD just created takes a moment to be Established)."""
    deadline = time.monotonic() + 30
    while True:
        status, answer = rest.request("POST", path, body)
        if status != 404 or time.monotonic() > deadline:
            return status, answer
        time.sleep(0.2)
