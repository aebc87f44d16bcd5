"""The simulator's SignalR JSON protocol helpers: framing, handshake checks, message parsing, error texts."""

from __future__ import annotations

import pytest

from octo_devtools.controller_sim import protocol


def test_record_reader_splits_records_across_and_within_frames() -> None:
    reader = protocol.RecordReader(max_record_bytes=100)
    assert reader.feed('{"type":6}\x1e{"type":') == ['{"type":6}']
    assert reader.feed('6}\x1e{"a":1}\x1e') == ['{"type":6}', '{"a":1}']
    assert reader.feed("") == []


def test_record_reader_limits_bytes_not_characters() -> None:
    reader = protocol.RecordReader(max_record_bytes=10)
    assert reader.feed("x" * 10 + "\x1e") == ["x" * 10]
    with pytest.raises(protocol.MessageTooLarge, match="The maximum message size of 10B was exceeded"):
        reader.feed("é" * 6 + "\x1e")  # 6 characters, 12 bytes
    with pytest.raises(protocol.MessageTooLarge):
        protocol.RecordReader(max_record_bytes=10).feed("y" * 11)  # an unfinished record counts too


@pytest.mark.parametrize(
    ("record", "legacy", "error"),
    [
        ('{"protocol":"json","version":1}', False, None),
        ('{"protocol":"json","version":2}', False, None),
        ('{"protocol":"json","version":0}', False, None),
        (
            '{"protocol":"json","version":0}',
            True,
            "The server does not support version 0 of the 'json' protocol.",
        ),
        (
            '{"protocol":"json","version":2}',
            True,
            "The server does not support version 2 of the 'json' protocol.",
        ),
        (
            '{"protocol":"json","version":3}',
            False,
            "The server does not support version 3 of the 'json' protocol.",
        ),
        ('{"protocol":"messagepack","version":1}', False, "The protocol 'messagepack' is not supported."),
        ('{"protocol":"json"}', False, "An unexpected error occurred during connection handshake."),
        ("not json", False, "An unexpected error occurred during connection handshake."),
    ],
)
def test_handshake_checks_match_aspnet_core(record: str, legacy: bool, error: str | None) -> None:
    def check() -> None:
        protocol.check_handshake(protocol.parse_handshake(record), legacy_version_check=legacy)

    if error is None:
        check()
        return
    with pytest.raises(protocol.HandshakeError) as failed:
        check()
    assert str(failed.value) == error


def test_parse_message_ignores_unknown_properties_and_headers() -> None:
    message = protocol.parse_message(
        '{"type":1,"invocationId":"7","target":"X","arguments":[1],"headers":{"a":"b"},"future":true}'
    )
    assert message == protocol.Invocation(invocation_id="7", target="X", arguments=[1])
    assert protocol.parse_message('{"type":6,"extra":1}') == protocol.OtherMessage(type=6)
    # An empty invocation id means non-blocking, as string.IsNullOrEmpty does in the dispatcher.
    assert (
        protocol.parse_message('{"type":1,"invocationId":"","target":"X","arguments":[]}').invocation_id
        is None
    )


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("{", "Error reading JSON"),
        ("[1]", "Expected a JSON Object"),
        ('{"target":"X"}', "Missing required property 'type'."),
        ('{"type":"1"}', "Expected 'type' to be of type Integer."),
        ('{"type":1,"arguments":[]}', "Missing required property 'target'."),
        ('{"type":1,"target":"X"}', "Missing required property 'arguments'."),
        ('{"type":1,"target":"X","arguments":{}}', "Expected 'arguments' to be of type Array."),
        ('{"type":1,"invocationId":5,"target":"X","arguments":[]}', "'invocationId' to be of type String."),
    ],
)
def test_parse_message_rejects_malformed_records(record: str, problem: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        protocol.parse_message(record)


def test_error_texts_follow_error_message_helper() -> None:
    assert (
        protocol.invocation_error(
            "FailAsync", "HubException", "Pool p9 does not exist.", detailed_errors=False
        )
        == "An unexpected error occurred invoking 'FailAsync' on the server. "
        "HubException: Pool p9 does not exist."
    )
    assert (
        protocol.invocation_error(
            "CrashAsync", "InvalidOperationException", "secret detail", detailed_errors=False
        )
        == "An unexpected error occurred invoking 'CrashAsync' on the server."
    )
    assert (
        protocol.invocation_error("CrashAsync", "InvalidOperationException", "detail", detailed_errors=True)
        == "An unexpected error occurred invoking 'CrashAsync' on the server. "
        "InvalidOperationException: detail"
    )
    assert (
        protocol.binding_error("RegisterPoolAsync", "InvalidDataException", "x", detailed_errors=False)
        == "Failed to invoke 'RegisterPoolAsync' due to an error on the server."
    )


def test_written_messages_are_compact_records() -> None:
    assert protocol.PING == '{"type":6}\x1e'
    assert protocol.completion_result("3", None) == '{"type":3,"invocationId":"3","result":null}\x1e'
    assert protocol.close_message() == '{"type":7}\x1e'
    assert protocol.close_message(allow_reconnect=True) == '{"type":7,"allowReconnect":true}\x1e'
    assert (
        protocol.close_message(error=protocol.CLOSED_WITH_ERROR)
        == '{"type":7,"error":"Connection closed with an error."}\x1e'
    )
    assert protocol.invocation("PoolUndeployedAsync", ["t", "p"]) == (
        '{"type":1,"target":"PoolUndeployedAsync","arguments":["t","p"]}\x1e'
    )
