"""Fixtures shared by the integration tests: the CommunicationPool CRD on the local API server."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from communication_operator.resources import communication_pool_crd
from octo_devtools.testing.cluster import KubeCluster


@pytest.fixture(scope="session")
def pool_crd(kube_cluster: KubeCluster) -> dict[str, Any]:
    """The CommunicationPool CRD, created once per run from the packaged manifest and Established."""
    manifest = yaml.safe_load(communication_pool_crd())
    rest = kube_cluster.rest()
    status, body = rest.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", manifest)
    if status not in (201, 409):
        raise RuntimeError(f"the API server refused the CommunicationPool CRD: HTTP {status} {body}")
    name = manifest["metadata"]["name"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, current = rest.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c["status"] for c in (current.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") == "True":
            return dict(current)
        time.sleep(0.2)
    raise RuntimeError(f"CRD {name} not Established after 30 s")
