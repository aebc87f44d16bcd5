"""Token rules of octo-spec §7.4 against a real issuer on loopback; the clock is the test's.

No token to be had → connect without one, warning each time; a failed refresh keeps the previous
token and the issuer is asked again after 30 s, never sooner; a token with less than 5 minutes left
is replaced before it is used.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from communication_operator.hub.auth import ClientCredentialsTokenProvider
from octo_devtools.testing.token_issuer import TokenIssuer, running_token_issuer

SECRET = "client-s3cr3t"
NO_TOKEN = "connecting to the controller without an access token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def issuer() -> AsyncIterator[TokenIssuer]:
    async with running_token_issuer() as running:
        yield running


def provider_for(url: str, clock: Clock) -> ClientCredentialsTokenProvider:
    return ClientCredentialsTokenProvider(
        issuer_uri=url,
        client_id="operator",
        client_secret=SecretStr(SECRET),
        tenant_id="OctoSystem",
        clock=clock,
    )


def warnings_with(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage())


async def test_an_issuer_that_is_down_means_no_token_and_a_warning_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = Clock()
    provider = provider_for(f"http://127.0.0.1:{port}", clock)

    with caplog.at_level(logging.WARNING):
        assert await provider.get_token() is None
        clock.now += 5
        assert await provider.get_token() is None

    assert warnings_with(caplog, NO_TOKEN) == 2
    assert SECRET not in caplog.text


async def test_an_answer_without_a_token_means_no_token(
    issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.answers = [{"token_type": "Bearer", "expires_in": 3600}]
    with caplog.at_level(logging.WARNING):
        assert await provider_for(issuer.url, Clock()).get_token() is None
    assert warnings_with(caplog, NO_TOKEN) == 1
    assert "HTTP 200 (no token)" in caplog.text
    assert SECRET not in caplog.text


async def test_the_issuer_is_asked_again_after_30_s_never_sooner(issuer: TokenIssuer) -> None:
    issuer.down = True
    clock = Clock()
    provider = provider_for(issuer.url, clock)

    for _ in range(10):  # the connection retries fast; the issuer is not hammered
        assert await provider.get_token() is None
        clock.now += 2.9
    assert issuer.requests == 0  # discovery itself failed: no token request yet ...
    issuer.down = False
    clock.now = 1000.0 + 29.9
    assert await provider.get_token() is None  # ... and 29.9 s after the failure: still not asked
    clock.now = 1000.0 + 30.0
    assert await provider.get_token() == "token-1"
    assert issuer.requests == 1


async def test_a_failed_refresh_keeps_the_previous_token_and_retries_every_30_s(
    issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.answers = [{"access_token": "first", "expires_in": 900}]
    clock = Clock()
    provider = provider_for(issuer.url, clock)
    assert await provider.get_token() == "first"

    issuer.down = True
    clock.now += 700  # 200 s left: must be replaced, but the issuer fails
    with caplog.at_level(logging.WARNING):
        assert await provider.get_token() == "first"
        clock.now += 10
        assert await provider.get_token() == "first"
    assert issuer.requests == 2  # the first fetch and one refresh; the second call was within 30 s
    assert warnings_with(caplog, NO_TOKEN) == 0

    clock.now += 20  # 30 s after the failed refresh
    assert await provider.get_token() == "first"
    assert issuer.requests == 3

    issuer.down = False
    clock.now += 30
    assert await provider.get_token() == "token-1"


async def test_a_token_issued_for_4_minutes_is_replaced_before_the_next_use(issuer: TokenIssuer) -> None:
    issuer.answers = [
        {"access_token": "short", "expires_in": 240},
        {"access_token": "long", "expires_in": 3600},
    ]
    provider = provider_for(issuer.url, Clock())

    assert await provider.get_token() == "short"  # the issuer's answer is used once ...
    assert await provider.get_token() == "long"  # ... and the next connect presents a new one
    assert issuer.requests == 2


async def test_a_token_with_5_minutes_or_more_left_is_reused(issuer: TokenIssuer) -> None:
    clock = Clock()
    provider = provider_for(issuer.url, clock)
    assert await provider.get_token() == "token-1"
    clock.now += 3600 - 300  # exactly 5 min left
    assert await provider.get_token() == "token-1"
    clock.now += 1  # less than 5 min left
    assert await provider.get_token() == "token-2"
    assert issuer.requests == 2
    assert issuer.forms[0]["scope"] == "octo_api"
    assert issuer.forms[0]["acr_values"] == "tenant:OctoSystem"


async def test_an_expired_token_is_not_presented_when_the_refresh_fails(
    issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    provider = provider_for(issuer.url, clock)
    assert await provider.get_token() == "token-1"
    issuer.down = True
    clock.now += 3601
    with caplog.at_level(logging.WARNING):
        assert await provider.get_token() is None
    assert warnings_with(caplog, NO_TOKEN) == 1


async def test_a_password_in_the_issuer_uri_never_reaches_the_log(
    issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.down = True
    url = issuer.url.replace("http://", "http://operator:uri-pa55word@")
    with caplog.at_level(logging.DEBUG):
        assert await provider_for(url, Clock()).get_token() is None
    assert warnings_with(caplog, NO_TOKEN) == 1
    assert "uri-pa55word" not in caplog.text
    assert SECRET not in caplog.text
