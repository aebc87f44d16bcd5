"""DeploymentSite resources in the pool services: central mode creates the kind of the controller's
generation and removes either kind; the status writer and Events address the object's own kind."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from communication_operator.contracts import DeployedPoolDto
from communication_operator.pools import FINALIZER, PoolProvisioner, PoolStatusWriter, RegistrationOutcome
from communication_operator.pools.kinds import COMMUNICATION_POOL, DEPLOYMENT_SITE, PoolKind
from communication_operator.pools.provisioner import KIND_UNAVAILABLE
from tests.unit.pools.doubles import FakeKube

RT_ID = "65f0c0ffee0000000000aaaa"
NAME = f"acme-{RT_ID}"
SECRET = f"{NAME}-octo-mesh-connection"


class Generation:
    """What the hub's contract selector would say; tests switch it like a controller upgrade."""

    def __init__(self, kind: PoolKind) -> None:
        self.kind = kind

    def __call__(self) -> PoolKind:
        return self.kind


def _provisioner(kube: FakeKube, generation: Generation) -> PoolProvisioner:
    return PoolProvisioner(
        kube, namespace="octo", broker_user="octo", broker_password="pw", kind_for=generation
    )


async def test_a_deploymentsite_controllers_pool_becomes_a_deploymentsite() -> None:
    kube = FakeKube()
    provisioner = _provisioner(kube, Generation(DEPLOYMENT_SITE))

    assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=RT_ID)) is True

    assert [line for line in kube.log if line.startswith("create")] == [
        f"create secrets octo/{SECRET}",
        f"create deploymentsites octo/{NAME}",
    ]
    site = kube.objects[("deploymentsites", "octo", NAME)]
    assert site["apiVersion"] == "octo-mesh.meshmakers.io/v1"
    assert site["kind"] == "DeploymentSite"
    assert site["spec"] == {"tenantId": "acme", "deploymentSiteRtId": RT_ID}
    assert site["metadata"]["labels"]["octo-mesh.meshmakers.io/deployment-site-rt-id"] == RT_ID
    assert site["metadata"]["finalizers"] == [FINALIZER]
    assert not any(kind == "communicationpools" for kind, _, _ in kube.objects)


async def test_a_pool_controllers_pool_stays_a_communicationpool() -> None:
    kube = FakeKube()
    provisioner = _provisioner(kube, Generation(COMMUNICATION_POOL))

    assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=RT_ID)) is True

    assert ("communicationpools", "octo", NAME) in kube.objects
    assert not any(kind == "deploymentsites" for kind, _, _ in kube.objects)


async def test_undeploy_removes_the_deploymentsite_and_its_secret() -> None:
    kube = FakeKube()
    provisioner = _provisioner(kube, Generation(DEPLOYMENT_SITE))
    await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=RT_ID))
    kube.log.clear()

    assert await provisioner.pool_undeployed("acme", RT_ID) is True

    assert [line for line in kube.log if line.startswith("delete")] == [
        f"delete deploymentsites octo/{NAME}",
        f"delete secrets octo/{SECRET}",
    ]
    assert kube.objects == {}


async def test_a_pool_provisioned_before_a_controller_upgrade_keeps_its_communicationpool() -> None:
    kube = FakeKube()
    generation = Generation(COMMUNICATION_POOL)
    provisioner = _provisioner(kube, generation)
    pool = DeployedPoolDto(tenant_id="acme", pool_rt_id=RT_ID)
    await provisioner.pool_deployed(pool)

    generation.kind = DEPLOYMENT_SITE  # the controller was upgraded; it lists the pool again
    assert await provisioner.pool_deployed(pool) is False
    assert not any(kind == "deploymentsites" for kind, _, _ in kube.objects)

    # ... and the DeploymentSite controller's undeploy removes it.
    assert await provisioner.pool_undeployed("acme", RT_ID) is True
    assert kube.objects == {}


async def test_a_hand_made_deploymentsite_is_left_alone() -> None:
    kube = FakeKube()
    kube.objects[("deploymentsites", "octo", NAME)] = {
        "metadata": {"name": NAME, "namespace": "octo"},
        "spec": {"tenantId": "acme", "deploymentSiteRtId": RT_ID},
    }
    provisioner = _provisioner(kube, Generation(DEPLOYMENT_SITE))

    assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=RT_ID)) is False
    assert await provisioner.pool_undeployed("acme", RT_ID) is False
    assert ("deploymentsites", "octo", NAME) in kube.objects


class DeploymentSitesUnavailable(FakeKube):
    """An API server that does not serve us DeploymentSites: its CRD is missing (404 on every request
    but a GET, which KubeObjects turns into None), or the operator's RBAC predates it (403)."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def _refuse(self, plural: str) -> None:
        if plural == "deploymentsites":
            error = RuntimeError("the server could not find the requested resource")
            error.status = self.status  # type: ignore[attr-defined]
            raise error

    async def get_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> Any | None:
        if self.status == 404 and plural == "deploymentsites":
            return None
        self._refuse(plural)
        return await super().get_custom(group, version, plural, namespace, name)

    async def list_custom(
        self, group: str, version: str, plural: str, namespace: str
    ) -> list[dict[str, Any]]:
        self._refuse(plural)
        return await super().list_custom(group, version, plural, namespace)

    async def create_custom(
        self, group: str, version: str, plural: str, namespace: str, body: dict[str, Any]
    ) -> bool:
        self._refuse(plural)
        return await super().create_custom(group, version, plural, namespace, body)


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (404, "the CRD deploymentsites.octo-mesh.meshmakers.io is not installed"),
        (403, "the operator may not use deploymentsites"),
    ],
)
async def test_where_deploymentsites_are_unavailable_communicationpools_serve_with_one_warning(
    status: int, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    kube = DeploymentSitesUnavailable(status)
    provisioner = _provisioner(kube, Generation(DEPLOYMENT_SITE))
    other = "65f0c0ffee0000000000aaab"

    with caplog.at_level(logging.WARNING, logger="communication_operator.pools.provisioner"):
        assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=RT_ID)) is True
        assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=other)) is True
        assert await provisioner.pool_undeployed("acme", other) is True

    pool = kube.objects[("communicationpools", "octo", NAME)]
    assert pool["spec"] == {"tenantId": "acme", "poolRtId": RT_ID}
    assert pool["metadata"]["labels"]["octo-mesh.meshmakers.io/pool-rt-id"] == RT_ID
    expected = KIND_UNAVAILABLE % ("DeploymentSite", why, "DeploymentSite")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [expected]
    assert ("communicationpools", "octo", f"acme-{other}") not in kube.objects


async def test_status_and_events_go_to_the_deploymentsite() -> None:
    kube = FakeKube()
    kube.objects[("deploymentsites", "octo", "a")] = {
        "metadata": {"name": "a", "namespace": "octo"},
        "spec": {"tenantId": "acme", "deploymentSiteRtId": RT_ID},
    }
    writer = PoolStatusWriter(kube)
    ref = DEPLOYMENT_SITE.ref("octo", "a", "uid-a")

    writer.publish(ref, RegistrationOutcome.registered(), 1)
    await writer.flush()

    assert [line for line in kube.log if line.startswith("status")] == ["status deploymentsites octo/a"]
    status = kube.objects[("deploymentsites", "octo", "a")]["status"]
    assert status["communicationStatus"] == "Registered"
    [(event_ref, _, reason, _)] = kube.events
    assert (event_ref.kind, event_ref.api_version, reason) == (
        "DeploymentSite",
        "octo-mesh.meshmakers.io/v1",
        "Registered",
    )
