"""Fixtures shared by the integration tests: the CommunicationPool and DeploymentSite CRDs on the local
API server (the chart ships both; the operator serves both)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from communication_operator.resources import communication_pool_crd, deployment_site_crd
from octo_devtools.testing.cluster import KubeCluster


def _install_crd(kube_cluster: KubeCluster, text: str) -> dict[str, Any]:
    """Create the CRD from a packaged manifest (or find it there) and wait until it is Established."""
    manifest = yaml.safe_load(text)
    rest = kube_cluster.rest()
    status, body = rest.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", manifest)
    name = manifest["metadata"]["name"]
    if status not in (201, 409):
        raise RuntimeError(f"the API server refused the CRD {name}: HTTP {status} {body}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, current = rest.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c["status"] for c in (current.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") == "True":
            return dict(current)
        time.sleep(0.2)
    raise RuntimeError(f"CRD {name} not Established after 30 s")


@pytest.fixture(scope="session")
def pool_crd(kube_cluster: KubeCluster) -> dict[str, Any]:
    """The CommunicationPool CRD (returned) and the DeploymentSite CRD, created once per run."""
    pool = _install_crd(kube_cluster, communication_pool_crd())
    _install_crd(kube_cluster, deployment_site_crd())
    return pool
