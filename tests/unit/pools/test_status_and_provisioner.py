"""Status rendering and writing, and central-mode provisioning, against the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from communication_operator.contracts import DeployedPoolDto
from communication_operator.pools import PoolProvisioner, PoolRef, PoolStatusWriter, RegistrationOutcome
from communication_operator.pools.status import RegistrationState, render_status
from tests.unit.pools.doubles import FakeKube

POOL_A = "65f0c0ffee0000000000aaaa"
CR = "acme-65f0c0ffee0000000000aaaa"


def test_transition_time_survives_while_a_condition_holds() -> None:
    first = RegistrationOutcome.registered()
    status = render_status(first, 1, None)
    later = RegistrationOutcome(first.state, first.reason, first.message, first.at + timedelta(hours=1))
    again = render_status(later, 1, status)
    assert [c["lastTransitionTime"] for c in again["conditions"]] == [
        c["lastTransitionTime"] for c in status["conditions"]
    ]
    assert again["lastRegistrationTime"] != status["lastRegistrationTime"]

    refused = render_status(RegistrationOutcome.refused("environment does not match"), 2, again)
    assert refused["phase"] == RegistrationState.FAILED
    assert refused["communicationStatus"] == "Failed: environment does not match"
    assert refused["lastRegistrationTime"] == again["lastRegistrationTime"]  # kept: when it last worked
    assert refused["observedGeneration"] == 2


async def test_writer_coalesces_skips_no_ops_and_posts_events_on_transitions() -> None:
    kube = FakeKube()
    kube.add_pool("octo", "a", "acme", POOL_A)
    ref = PoolRef("octo", "a", "uid-a")
    writer = PoolStatusWriter(kube)

    writer.publish(ref, RegistrationOutcome.unavailable(), 1)
    writer.publish(ref, RegistrationOutcome.refused("no"), 1)
    writer.publish(ref, RegistrationOutcome.registered(), 1)  # only the newest queued one is written
    await writer.flush()
    writer.publish(ref, RegistrationOutcome.registered(), 1)  # nothing changed: no write
    await writer.flush()

    patches = [line for line in kube.log if line.startswith("status")]
    assert len(patches) <= 2
    assert kube.status_of("octo", "a")["communicationStatus"] == "Registered"
    assert kube.events[-1][2] == "Registered"
    assert [e[2] for e in kube.events].count("Registered") == 1


async def test_writer_seeded_with_the_current_status_does_not_rewrite_it() -> None:
    kube = FakeKube()
    kube.add_pool("octo", "a", "acme", POOL_A)
    ref = PoolRef("octo", "a", "uid-a")
    current = render_status(RegistrationOutcome.registered(), 3, None)
    writer = PoolStatusWriter(kube)
    writer.seed(ref, current)
    writer.publish(ref, RegistrationOutcome.registered(), 3)
    await writer.flush()
    assert kube.log == []
    assert kube.events == []


async def test_writer_retries_failed_patches_and_tolerates_gone_objects() -> None:
    kube = FakeKube(status_failures=1)
    kube.add_pool("octo", "a", "acme", POOL_A)
    writer = PoolStatusWriter(kube, retry_delays=(0.01,))
    writer.publish(PoolRef("octo", "a", "uid"), RegistrationOutcome.registered(), 1)
    writer.publish(PoolRef("octo", "gone", "uid"), RegistrationOutcome.registered(), 1)
    await writer.flush()
    assert kube.status_of("octo", "a")["phase"] == "Registered"
    assert [e[0].name for e in kube.events] == ["a"]  # no event for an object that is gone


async def test_provisioner_creates_secret_then_pool_and_is_idempotent() -> None:
    kube = FakeKube()
    provisioner = PoolProvisioner(kube, namespace="octo", broker_user="octo", broker_password="pw")
    pool = DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_A)

    assert await provisioner.pool_deployed(pool) is True
    assert await provisioner.pool_deployed(pool) is False

    assert [line for line in kube.log if line.startswith("create")] == [
        f"create secrets octo/{CR}-octo-mesh-connection",
        f"create communicationpools octo/{CR}",
    ]
    secret = kube.objects[("secrets", "octo", f"{CR}-octo-mesh-connection")]
    assert secret["stringData"] == {"brokerusername": "octo", "brokerpassword": "pw"}
    assert secret["metadata"]["labels"]["octo-mesh.meshmakers.io/managed-by"] == "communication-operator"
    resource = kube.objects[("communicationpools", "octo", CR)]
    assert resource["spec"] == {"tenantId": "acme", "poolRtId": POOL_A}
    assert resource["metadata"]["labels"]["octo-mesh.meshmakers.io/pool-rt-id"] == POOL_A


async def test_provisioner_deletes_pool_then_secret_and_tolerates_absence() -> None:
    kube = FakeKube()
    provisioner = PoolProvisioner(kube, namespace="octo", broker_user=None, broker_password=None)
    await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_A))
    kube.log.clear()

    assert await provisioner.pool_undeployed("acme", POOL_A) is True
    assert await provisioner.pool_undeployed("acme", POOL_A) is False
    assert kube.log[:2] == [
        f"delete communicationpools octo/{CR}",
        f"delete secrets octo/{CR}-octo-mesh-connection",
    ]
    assert kube.objects == {}


async def test_provisioner_ignores_malformed_pool_ids() -> None:
    kube = FakeKube()
    provisioner = PoolProvisioner(kube, namespace="octo", broker_user=None, broker_password=None)
    assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id="NOT-HEX")) is False
    assert kube.log == []


def test_outcome_timestamps_are_utc() -> None:
    outcome = RegistrationOutcome.registered()
    assert outcome.at.tzinfo is UTC
    assert abs(datetime.now(UTC) - outcome.at) < timedelta(seconds=5)


async def test_provisioner_does_not_duplicate_a_pool_named_by_another_object() -> None:
    kube = FakeKube()
    kube.add_pool("octo", "hand-made", "acme", POOL_A)
    provisioner = PoolProvisioner(kube, namespace="octo", broker_user=None, broker_password=None)
    assert await provisioner.pool_deployed(DeployedPoolDto(tenant_id="acme", pool_rt_id=POOL_A)) is False
    assert [k for k in kube.objects if k[0] == "communicationpools"] == [
        ("communicationpools", "octo", "hand-made")
    ]
    assert not [k for k in kube.objects if k[0] == "secrets"]
