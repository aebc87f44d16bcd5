"""The SignalR JSON hub protocol: record framing and message shapes (see docs/decisions/0001)."""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

RECORD_SEPARATOR = "\x1e"
HANDSHAKE_REQUEST = json.dumps({"protocol": "json", "version": 1}) + RECORD_SEPARATOR


class MessageType(IntEnum):
    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7


PING_RECORD = json.dumps({"type": MessageType.PING}) + RECORD_SEPARATOR


def encode(message: dict[str, Any]) -> str:
    """One record: compact JSON (as System.Text.Json writes it) followed by the record separator."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False) + RECORD_SEPARATOR


def invocation(invocation_id: str | None, target: str, arguments: list[Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"type": MessageType.INVOCATION, "target": target, "arguments": arguments}
    if invocation_id is not None:
        message["invocationId"] = invocation_id
    return message


def split_records(buffer: str) -> tuple[list[str], str]:
    """Complete records in ``buffer`` and the incomplete tail (a frame may carry several records)."""
    *records, tail = buffer.split(RECORD_SEPARATOR)
    return [r for r in records if r], tail


def parse_handshake_response(record: str) -> str | None:
    """The handshake error text, or ``None`` when the server accepted the handshake."""
    try:
        response = json.loads(record)
    except json.JSONDecodeError:
        return f"malformed handshake response: {record[:200]!r}"
    if not isinstance(response, dict):
        return f"malformed handshake response: {record[:200]!r}"
    error = response.get("error")
    return str(error) if error else None
