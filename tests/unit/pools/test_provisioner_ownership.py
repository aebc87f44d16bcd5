"""Central-mode provisioning: collision-free CR names, objects that are not ours, CRs that cannot be made."""

from __future__ import annotations

import logging

import pytest

from communication_operator.contracts import DeployedPoolDto
from communication_operator.kube.objects import EventType
from communication_operator.names import dns_name
from communication_operator.pools import PoolKey, PoolProvisioner
from communication_operator.pools.naming import broker_secret_name, pool_resource_name
from tests.unit.pools.doubles import FakeKube

POOL_A = "65f0c0ffee0000000000aaaa"
POOL_B = "65f0c0ffee0000000000aaab"
LONG_TENANT = "a-very-long-tenant-identifier-for-a-big-customer"


def _provisioner(kube: FakeKube) -> PoolProvisioner:
    return PoolProvisioner(kube, namespace="octo", broker_user="octo", broker_password="pw")


def _pools(kube: FakeKube) -> list[str]:
    return sorted(name for kind, _, name in kube.objects if kind == "communicationpools")


async def test_two_pools_of_a_long_tenant_both_get_a_communication_pool() -> None:
    kube = FakeKube()
    provisioner = _provisioner(kube)

    assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id=LONG_TENANT, pool_rt_id=POOL_A))
    assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id=LONG_TENANT, pool_rt_id=POOL_B))

    names = _pools(kube)
    assert len(names) == 2
    specs = {kube.objects[("communicationpools", "octo", n)]["spec"]["poolRtId"] for n in names}
    assert specs == {POOL_A, POOL_B}
    assert len([k for k in kube.objects if k[0] == "secrets"]) == 2


async def test_a_name_held_by_another_pool_is_an_error_logged_and_posted_on_that_object(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = FakeKube()
    name = pool_resource_name(PoolKey("acme", POOL_A))
    kube.add_pool("octo", name, "globex", POOL_B)  # someone's object under the name our pool needs
    provisioner = _provisioner(kube)

    with caplog.at_level(logging.ERROR):
        created = await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_A))

    assert created is False
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        f"cannot create the CommunicationPool for pool acme/{POOL_A}: "
        f"octo/{name} already exists for pool globex/{POOL_B}"
    ]
    [(ref, event_type, reason, message)] = kube.events
    assert (ref.name, event_type, reason, message) == (name, EventType.WARNING, "PoolNameTaken", errors[0])


async def test_a_refused_create_is_logged_as_an_error_and_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class RefusingKube(FakeKube):
        async def create_custom(self, *args: object, **kwargs: object) -> bool:
            raise RuntimeError("admission webhook denied the request")

    kube = RefusingKube()
    with caplog.at_level(logging.ERROR):
        created = await _provisioner(kube).pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_A))

    assert created is False
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == (
        f"cannot create the CommunicationPool for pool acme/{POOL_A} in octo: "
        "admission webhook denied the request"
    )


async def test_an_unmanaged_secret_is_neither_overwritten_nor_deleted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = FakeKube()
    name = pool_resource_name(PoolKey("acme", POOL_A))
    secret = broker_secret_name(name)
    theirs = {
        "metadata": {"name": secret, "namespace": "octo", "uid": "theirs", "labels": {"team": "platform"}},
        "stringData": {"brokerpassword": "their-password"},
    }
    kube.objects[("secrets", "octo", secret)] = dict(theirs)
    provisioner = _provisioner(kube)

    assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_A))
    assert kube.objects[("secrets", "octo", secret)] == theirs
    with caplog.at_level(logging.WARNING):
        await provisioner.pool_undeployed("acme", POOL_A)

    assert kube.objects[("secrets", "octo", secret)] == theirs
    assert _pools(kube) == []  # our CommunicationPool is gone
    assert f"delete secrets octo/{secret}" not in kube.log
    assert any("no managed-by label" in r.getMessage() and secret in r.getMessage() for r in caplog.records)


async def test_an_unmanaged_communication_pool_is_not_deleted() -> None:
    kube = FakeKube()
    name = pool_resource_name(PoolKey("acme", POOL_A))
    kube.add_pool("octo", name, "acme", POOL_A)  # hand-made: no labels

    assert await _provisioner(kube).pool_undeployed("acme", POOL_A) is False
    assert _pools(kube) == [name]


async def test_undeploy_removes_our_pool_under_upstreams_truncated_name_too() -> None:
    kube = FakeKube()
    upstream = dns_name(LONG_TENANT, POOL_A)  # the truncated name the .NET operator gave it
    kube.add_pool("octo", upstream, LONG_TENANT, POOL_A)
    kube.objects[("communicationpools", "octo", upstream)]["metadata"]["labels"] = {
        "octo-mesh.meshmakers.io/managed-by": "communication-operator"
    }

    assert await _provisioner(kube).pool_undeployed(LONG_TENANT, POOL_A) is True
    assert _pools(kube) == []


async def test_a_tenant_without_letters_or_digits_is_not_provisioned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = FakeKube()
    with caplog.at_level(logging.ERROR):
        assert (
            await _provisioner(kube).pool_deployed(DeployedPoolDto(tenant_id="***", pool_rt_id=POOL_A))
            is False
        )
    assert kube.objects == {}
    assert any("tenantId '***' has no letters or digits" in r.getMessage() for r in caplog.records)
