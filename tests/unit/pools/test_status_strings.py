"""``status.communicationStatus`` strings, exactly as octo-spec §2.3 gives them."""

from __future__ import annotations

import asyncio

from communication_operator.contracts import ServerMethod
from communication_operator.pools import PoolRef, PoolStatusWriter, RegistrationOutcome
from communication_operator.pools.status import OUTCOME_MESSAGE_LIMIT, render_status
from communication_operator.redaction import remember_secrets
from tests.unit.pools.doubles import FakeHub, FakeKube
from tests.unit.pools.test_registration import NS, POOL_A, make_service, pool


async def test_in_progress_while_the_registration_is_under_way_then_registered() -> None:
    hub, kube = FakeHub(), FakeKube()
    hub.delay = 0.5  # the controller takes its time answering RegisterPoolAsync
    service, writer = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)

    registering = asyncio.create_task(service.ensure_registered(ref, spec, generation=1))
    await asyncio.sleep(0.2)
    assert not registering.done()
    assert kube.status_of(NS, "a")["communicationStatus"] == "In Progress"
    assert kube.events == []  # "In Progress" is not worth an Event

    await registering
    await writer.flush()
    assert kube.status_of(NS, "a")["communicationStatus"] == "Registered"
    assert [(e[1], e[2]) for e in kube.events] == [("Normal", "Registered")]
    assert hub.calls_of(ServerMethod.REGISTER_POOL) == [("acme", POOL_A)]


async def test_a_refusal_is_failed_colon_message() -> None:
    hub, kube = FakeHub(), FakeKube()
    hub.refusals[POOL_A] = "Pool 65f0c0ffee0000000000aaaa not found"
    service, writer = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)

    await service.ensure_registered(ref, spec, generation=1)
    await writer.flush()

    assert kube.status_of(NS, "a")["communicationStatus"] == "Failed: Pool 65f0c0ffee0000000000aaaa not found"


def test_the_three_strings() -> None:
    assert render_status(RegistrationOutcome.in_progress(), 1, None)["communicationStatus"] == "In Progress"
    assert render_status(RegistrationOutcome.unavailable(), 1, None)["communicationStatus"] == "In Progress"
    assert render_status(RegistrationOutcome.registered(), 1, None)["communicationStatus"] == "Registered"
    assert render_status(RegistrationOutcome.error("boom"), 1, None)["communicationStatus"] == "Failed: boom"


async def test_an_object_that_already_shows_an_outcome_does_not_flap_to_in_progress() -> None:
    kube = FakeKube()
    kube.add_pool(NS, "a", "acme", POOL_A)
    ref = PoolRef(NS, "a", "uid-a")
    writer = PoolStatusWriter(kube)
    writer.seed(ref, render_status(RegistrationOutcome.registered(), 1, None))

    writer.begin(ref, 1)
    await writer.flush()

    assert [line for line in kube.log if line.startswith("status")] == []


async def test_a_refusal_carrying_a_known_secret_reaches_neither_status_nor_event_and_is_bounded() -> None:
    secret = "broker-pass-w0rd-7f3a"
    remember_secrets([secret])
    hub, kube = FakeHub(), FakeKube()
    # The controller echoes what it was given, at length, with the secret on a would-be cut.
    hub.refusals[POOL_A] = f"cannot reach broker amqp://octo:{secret}@rabbit " + "x" * 5000 + secret
    service, writer = make_service(hub, kube)
    ref, spec = pool(kube, "a", "acme", POOL_A)

    await service.ensure_registered(ref, spec, generation=1)
    await writer.flush()

    status = kube.status_of(NS, "a")
    texts = [status["communicationStatus"], *(c.get("message", "") for c in status["conditions"])]
    texts += [event[3] for event in kube.events]
    assert kube.events, "the refusal posted no Event"
    for text in texts:
        assert secret[:-1] not in text, text[:300]
    assert status["communicationStatus"].startswith("Failed: cannot reach broker amqp://octo:***@rabbit")
    assert len(status["communicationStatus"]) <= len("Failed: ") + OUTCOME_MESSAGE_LIMIT


def test_an_error_outcome_is_redacted_before_it_is_cut() -> None:
    secret = "s3cret-value-on-the-cut"
    remember_secrets([secret])
    # The secret straddles where a cut that came first would fall.
    detail = "y" * (OUTCOME_MESSAGE_LIMIT // 2 - 50) + secret + "z" * OUTCOME_MESSAGE_LIMIT
    outcome = RegistrationOutcome.error(f"RuntimeError: {detail}")
    assert secret[:6] not in outcome.message
    assert len(outcome.message) <= OUTCOME_MESSAGE_LIMIT
    assert outcome.message.startswith("RuntimeError: yyy")
