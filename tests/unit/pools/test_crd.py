"""The CommunicationPool CRD: one canonical file in the package, an identical copy in crds/, a schema
that a 1.20 API server accepts (structural, no CEL) and that enforces what the spec promises."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from communication_operator.pools import GROUP, KIND, PLURAL, VERSION
from communication_operator.resources import communication_pool_crd

REPO = Path(__file__).resolve().parents[3]


def crd() -> dict[str, Any]:
    document = yaml.safe_load(communication_pool_crd())
    assert isinstance(document, dict)
    return document


def test_repository_copy_is_identical_to_the_packaged_file() -> None:
    assert (REPO / "crds" / "communicationpool.yaml").read_text(encoding="utf-8") == communication_pool_crd()


def test_names_scope_and_version() -> None:
    document = crd()
    assert document["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert document["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    spec = document["spec"]
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == KIND
    assert spec["names"]["plural"] == PLURAL
    assert set(spec["names"]["shortNames"]) == {"cpool", "cpools"}
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Tenant"] == ".spec.tenantId"
    assert columns["Pool"] == ".spec.poolRtId"
    assert columns["Status"] == ".status.communicationStatus"
    assert columns["Age"] == ".metadata.creationTimestamp"


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Structural-schema violations: every node typed (or preserve-unknown), no CEL (1.20 has none)."""
    problems = []
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path or '/'}: no type")
    if "x-kubernetes-validations" in schema:
        problems.append(f"{path}: CEL rules need Kubernetes 1.25+")
    for name, child in (schema.get("properties") or {}).items():
        problems += _walk(child, f"{path}.{name}")
    if "items" in schema:
        problems += _walk(schema["items"], f"{path}[]")
    return problems


def test_schema_is_structural_without_cel() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


def test_spec_rules() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    assert set(spec["required"]) == {"tenantId", "poolRtId"}
    assert spec["properties"]["tenantId"]["minLength"] == 1
    pattern = re.compile(spec["properties"]["poolRtId"]["pattern"])
    assert pattern.match("65f0c0ffee0000000000aaaa")
    assert not pattern.match("65F0C0FFEE0000000000AAAA")
    assert not pattern.match("65f0c0ffee0000000000aaa")


def test_status_fields() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    status = schema["properties"]["status"]["properties"]
    assert {
        "communicationStatus",
        "phase",
        "conditions",
        "lastRegistrationTime",
        "observedGeneration",
    } <= set(status)
    condition = status["conditions"]["items"]["properties"]
    assert {"type", "status", "reason", "message", "observedGeneration", "lastTransitionTime"} <= set(
        condition
    )
