"""Reconnect delays and SignalR record framing."""

from __future__ import annotations

import random

import pytest

from communication_operator.hub import Backoff, HubError, protocol
from communication_operator.hub.session import hub_url
from communication_operator.redaction import redact_url_tokens


@pytest.mark.parametrize(("attempt", "expected"), [(0, 0.2), (1, 0.4), (3, 1.6), (6, 10.0), (50, 10.0)])
def test_backoff_grows_exponentially_and_is_capped(attempt: int, expected: float) -> None:
    backoff = Backoff(initial=0.2, factor=2, maximum=10, jitter=0.0)
    assert backoff.delay(attempt) == pytest.approx(expected)


def test_backoff_jitter_stays_within_its_fraction() -> None:
    backoff = Backoff(initial=1, factor=2, maximum=8, jitter=0.25)
    rng = random.Random(7)
    delays = [backoff.delay(2, rng) for _ in range(200)]
    assert min(delays) >= 3.0
    assert max(delays) <= 5.0
    assert len(set(delays)) > 100


def test_records_are_split_on_the_separator_and_keep_the_tail() -> None:
    records, tail = protocol.split_records('{"type":6}\x1e{"type":1}\x1e{"ty')
    assert records == ['{"type":6}', '{"type":1}']
    assert tail == '{"ty'


def test_encode_is_compact_and_terminated() -> None:
    assert protocol.encode(protocol.invocation("1", "RegisterPoolAsync", ["t", "p"])) == (
        '{"type":1,"target":"RegisterPoolAsync","arguments":["t","p"],"invocationId":"1"}\x1e'
    )


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ("{}", None),
        ('{"error":"The protocol \'x\' is not supported."}', "The protocol 'x' is not supported."),
    ],
)
def test_handshake_response(record: str, error: str | None) -> None:
    assert protocol.parse_handshake_response(record) == error


@pytest.mark.parametrize(
    ("text", "hub_message", "is_hub_exception"),
    [
        (
            "An unexpected error occurred invoking 'RegisterPoolAsync' on the server. "
            "HubException: Pool p9 does not exist.",
            "Pool p9 does not exist.",
            True,
        ),
        (
            "An unexpected error occurred invoking 'CrashAsync' on the server.",
            "An unexpected error occurred invoking 'CrashAsync' on the server.",
            False,
        ),
    ],
)
def test_hub_error_takes_the_text_after_the_marker(
    text: str, hub_message: str, is_hub_exception: bool
) -> None:
    error = HubError("RegisterPoolAsync", text)
    assert error.hub_message == hub_message
    assert error.is_hub_exception is is_hub_exception


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://c:5000", "http://c:5000/operatorHub"),
        ("http://c:5000/", "http://c:5000/operatorHub"),
        ("https://c/prefix/operatorHub", "https://c/prefix/operatorHub"),
    ],
)
def test_hub_url(base: str, expected: str) -> None:
    assert hub_url(base) == expected


def test_tokens_in_urls_are_redacted() -> None:
    text = "400, message='Invalid response status', url='ws://c/operatorHub?id=abc&access_token=eyJhbGci.x.y'"
    assert "eyJ" not in redact_url_tokens(text)


def test_passwords_in_controller_urls_are_redacted() -> None:
    assert (
        redact_url_tokens("https://operator:hunter2@octo.example.com/x")
        == "https://operator:***@octo.example.com/x"
    )
