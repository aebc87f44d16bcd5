"""The two pool kinds (pools/kinds.py) and the DeploymentSite CRD shipped beside the CommunicationPool one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from communication_operator.contracts.profiles import Contract
from communication_operator.pools import GROUP, PoolKey, PoolRef
from communication_operator.pools.kinds import (
    COMMUNICATION_POOL,
    DEPLOYMENT_SITE,
    KINDS,
    InvalidSpec,
    kind_for_contract,
    kind_named,
    kind_of_plural,
    kind_of_ref,
)
from communication_operator.resources import communication_pool_crd, deployment_site_crd, read_text

REPO = Path(__file__).resolve().parents[3]
RT_ID = "65f0c0ffee0000000000aaaa"


def test_the_deployment_site_kind_has_upstreams_coordinates() -> None:
    # octo-spec §0.3 / upstream-delta §2: v1, deploymentsites.octo-mesh.meshmakers.io, spec
    # {tenantId, deploymentSiteRtId}, label octo-mesh.meshmakers.io/deployment-site-rt-id.
    assert DEPLOYMENT_SITE.api_version == "octo-mesh.meshmakers.io/v1"
    assert DEPLOYMENT_SITE.crd_name == "deploymentsites.octo-mesh.meshmakers.io"
    assert DEPLOYMENT_SITE.resource == (GROUP, "v1", "deploymentsites")
    key = PoolKey("acme", RT_ID)
    assert DEPLOYMENT_SITE.spec_body(key) == {"tenantId": "acme", "deploymentSiteRtId": RT_ID}
    assert DEPLOYMENT_SITE.labels(key) == {
        "octo-mesh.meshmakers.io/tenant": "acme",
        "octo-mesh.meshmakers.io/deployment-site-rt-id": RT_ID,
        "octo-mesh.meshmakers.io/managed-by": "communication-operator",
    }


def test_the_communication_pool_kind_keeps_its_names() -> None:
    assert COMMUNICATION_POOL.api_version == "octo-mesh.meshmakers.io/v1alpha1"
    assert COMMUNICATION_POOL.crd_name == "communicationpools.octo-mesh.meshmakers.io"
    key = PoolKey("acme", RT_ID)
    assert COMMUNICATION_POOL.spec_body(key) == {"tenantId": "acme", "poolRtId": RT_ID}
    assert COMMUNICATION_POOL.labels(key)["octo-mesh.meshmakers.io/pool-rt-id"] == RT_ID
    assert "octo-mesh.meshmakers.io/deployment-site-rt-id" not in COMMUNICATION_POOL.labels(key)


def test_each_kind_reads_its_own_spec_field() -> None:
    assert DEPLOYMENT_SITE.key_of({"tenantId": "acme", "deploymentSiteRtId": RT_ID}) == PoolKey("acme", RT_ID)
    assert DEPLOYMENT_SITE.key_of({"tenantId": "acme", "poolRtId": RT_ID}) is None
    assert COMMUNICATION_POOL.key_of({"tenantId": "acme", "poolRtId": RT_ID}) == PoolKey("acme", RT_ID)
    assert COMMUNICATION_POOL.key_of(None) is None

    spec = DEPLOYMENT_SITE.parse_spec({"tenantId": "acme", "deploymentSiteRtId": RT_ID})
    assert spec.key == PoolKey("acme", RT_ID)


def test_an_invalid_spec_is_named_in_the_kinds_own_field_names() -> None:
    with pytest.raises(InvalidSpec) as raised:
        DEPLOYMENT_SITE.parse_spec({"tenantId": "acme", "deploymentSiteRtId": "NOT-HEX"})
    message = str(raised.value)
    assert message.startswith("invalid DeploymentSite: spec.deploymentSiteRtId: ")
    assert "poolRtId" not in message

    with pytest.raises(InvalidSpec, match=r"^invalid CommunicationPool: spec\.poolRtId: "):
        COMMUNICATION_POOL.parse_spec({"tenantId": "acme", "poolRtId": "x"})
    with pytest.raises(InvalidSpec, match=r"spec\.tenantId"):
        DEPLOYMENT_SITE.parse_spec({"deploymentSiteRtId": RT_ID})


def test_lookups() -> None:
    assert kind_for_contract(Contract.POOLS) is COMMUNICATION_POOL
    assert kind_for_contract(Contract.DEPLOYMENT_SITES) is DEPLOYMENT_SITE
    assert kind_of_plural("deploymentsites") is DEPLOYMENT_SITE
    assert kind_named("CommunicationPool") is COMMUNICATION_POOL
    assert kind_of_ref(PoolRef("octo", "a")) is COMMUNICATION_POOL  # the default: existing callers
    assert kind_of_ref(DEPLOYMENT_SITE.ref("octo", "a", "uid")) is DEPLOYMENT_SITE
    assert DEPLOYMENT_SITE.ref("octo", "a", "uid") != COMMUNICATION_POOL.ref("octo", "a", "uid")
    with pytest.raises(ValueError, match="not a pool kind"):
        kind_named("Pod")
    with pytest.raises(ValueError, match="not a pool resource"):
        kind_of_plural("pods")


def test_object_refs_name_the_kind() -> None:
    ref = DEPLOYMENT_SITE.ref("octo", "a", "uid-a")
    object_ref = DEPLOYMENT_SITE.object_ref(ref)
    assert (object_ref.api_version, object_ref.kind) == ("octo-mesh.meshmakers.io/v1", "DeploymentSite")


# --- the DeploymentSite CRD ----------------------------------------------------------------------------


def _crd(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_kind_has_its_crd_in_the_package_in_crds_and_in_the_chart(kind: Any) -> None:
    packaged = read_text(kind.crd_file)
    assert (REPO / "crds" / kind.crd_file).read_text(encoding="utf-8") == packaged
    chart_copy = REPO / "charts" / "communication-operator" / "files" / "crds" / kind.crd_file
    assert chart_copy.read_text(encoding="utf-8") == packaged
    document = _crd(packaged)
    assert document["metadata"]["name"] == kind.crd_name
    names = document["spec"]["names"]
    assert (names["kind"], names["plural"], names["singular"]) == (kind.kind, kind.plural, kind.singular)
    [version] = document["spec"]["versions"]
    assert version["name"] == kind.version


def test_deployment_site_crd_shape() -> None:
    document = _crd(deployment_site_crd())
    assert document["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    spec = document["spec"]
    assert (spec["group"], spec["scope"]) == (GROUP, "Namespaced")
    assert spec["names"]["listKind"] == "DeploymentSiteList"
    assert set(spec["names"]["shortNames"]) == {"dsite", "dsites"}
    [version] = spec["versions"]
    assert (version["served"], version["storage"], version["subresources"]) == (True, True, {"status": {}})
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Site"] == ".spec.deploymentSiteRtId"
    assert columns["Status"] == ".status.communicationStatus"

    schema = version["schema"]["openAPIV3Schema"]
    site = schema["properties"]["spec"]
    assert set(site["required"]) == {"tenantId", "deploymentSiteRtId"}
    pattern = re.compile(site["properties"]["deploymentSiteRtId"]["pattern"])
    assert pattern.match(RT_ID)
    assert not pattern.match(RT_ID.upper())
    assert not pattern.match(RT_ID[:-1])


def test_deployment_site_status_schema_is_the_communication_pools() -> None:
    # The operator writes one status shape for both kinds; a field missing here would be pruned.
    def without_descriptions(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
        return node

    def status_schema(text: str) -> Any:
        [version] = _crd(text)["spec"]["versions"]
        return without_descriptions(version["schema"]["openAPIV3Schema"]["properties"]["status"])

    assert status_schema(deployment_site_crd()) == status_schema(communication_pool_crd())
