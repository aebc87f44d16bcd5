"""The operator's hub connection with a real token issuer on loopback and the simulator's bearer check.

The simulator started with a token (``--token``) stands for a controller under ``Enforce``; one without
stands for the default ``LogOnly`` gate, where a connection without a token is let in.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import pytest_asyncio
from pydantic import SecretStr

from communication_operator.hub import Backoff, HubConnection, HubOptions
from communication_operator.hub.auth import ClientCredentialsTokenProvider
from octo_devtools.controller_sim.harness import RunningSimulator
from octo_devtools.testing.simulator import SimulatorFactory
from octo_devtools.testing.token_issuer import TokenIssuer, running_token_issuer
from octo_devtools.testing.waiting import eventually

NO_TOKEN = "connecting to the controller without an access token"
FAST_RETRY = {
    "backoff": Backoff(initial=0.05, maximum=0.2),
    "refused_backoff": Backoff(initial=0.05, maximum=0.2),
}


@pytest_asyncio.fixture
async def issuer() -> AsyncIterator[TokenIssuer]:
    async with running_token_issuer() as running:
        yield running


def provider_for(issuer: TokenIssuer) -> ClientCredentialsTokenProvider:
    return ClientCredentialsTokenProvider(
        issuer_uri=issuer.url,
        client_id="operator",
        client_secret=SecretStr("client-s3cr3t"),
        tenant_id="OctoSystem",
    )


@asynccontextmanager
async def connected_hub(
    sim: RunningSimulator, provider: ClientCredentialsTokenProvider
) -> AsyncIterator[HubConnection]:
    hub = HubConnection(HubOptions(url=sim.base_url, handshake_timeout=5.0, **FAST_RETRY), provider)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop(drain_timeout=1.0)


async def test_a_4_minute_token_is_replaced_and_the_next_connect_presents_the_new_one(
    controller_sim_factory: SimulatorFactory, issuer: TokenIssuer
) -> None:
    issuer.answers = [{"access_token": "short-lived", "expires_in": 240}]  # then token-1, valid an hour
    sim = await controller_sim_factory(token="token-1")

    async with connected_hub(sim, provider_for(issuer)) as hub:
        await hub.wait_connected(10)

    assert issuer.requests == 2
    assert [form["scope"] for form in issuer.forms] == ["octo_api", "octo_api"]


async def test_no_token_to_be_had_connects_without_one_under_log_only(
    controller_sim: RunningSimulator, issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.answers = [{"token_type": "Bearer", "expires_in": 3600}]  # an answer without a token

    with caplog.at_level(logging.WARNING):
        async with connected_hub(controller_sim, provider_for(issuer)) as hub:
            await hub.wait_connected(10)

    assert sum(NO_TOKEN in r.getMessage() for r in caplog.records) == 1
    assert "client-s3cr3t" not in caplog.text


async def test_under_enforcement_connects_are_retried_but_the_issuer_only_every_30_s(
    controller_sim_factory: SimulatorFactory, issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.answers = [(503, '{"error": "temporarily_unavailable"}')]
    sim = await controller_sim_factory(token="token-1")

    with caplog.at_level(logging.WARNING):
        async with connected_hub(sim, provider_for(issuer)) as hub:

            async def refused_connects() -> bool:
                return sum(NO_TOKEN in r.getMessage() for r in caplog.records) >= 4

            await eventually(
                refused_connects, timeout=10, what="several connects, each warning it has no token"
            )
            assert not hub.connected

    assert issuer.requests == 1  # one failed request; the next is due 30 s later
    assert "client-s3cr3t" not in caplog.text


async def test_the_check_command_says_why_it_connected_without_a_token(
    controller_sim: RunningSimulator, issuer: TokenIssuer
) -> None:
    from communication_operator.check import check_controller
    from communication_operator.settings import AuthenticationSettings, Settings

    issuer.answers = [{"token_type": "Bearer"}]
    settings = Settings(
        communication_controller_uri=controller_sim.base_url,
        authentication=AuthenticationSettings(issuer_uri=issuer.url, client_id="operator"),
    )

    detail = await check_controller(settings)

    assert detail.endswith("(without a token: token endpoint answered HTTP 200 (no token))")
