"""The ASP.NET Core SignalR JSON hub protocol as the server side speaks it: framing, handshake, messages.

Pure functions and small value types only (no sockets), so every rule here is unit-testable. The
texts are copied from ``HubConnectionContext``, ``DefaultHubDispatcher``, ``ErrorMessageHelper`` and
``JsonHubProtocol`` of dotnet/aspnetcore (see the SignalR research note, §1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

RECORD_SEPARATOR = "\x1e"


class MessageType(IntEnum):
    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7
    ACK = 8
    SEQUENCE = 9


class ProtocolError(Exception):
    """A record the server cannot parse; ASP.NET ends the connection (``InvalidDataException``)."""


class MessageTooLarge(ProtocolError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The maximum message size of {limit}B was exceeded.")


class HandshakeError(Exception):
    """The handshake failed; ``str(exc)`` is the exact ``error`` text sent to the client."""


@dataclass(frozen=True)
class HandshakeRequest:
    protocol: str
    version: int


@dataclass(frozen=True)
class Invocation:
    invocation_id: str | None
    target: str
    arguments: list[Any]
    streaming: bool = False  # a StreamInvocation (type 4); the operator hub has no streaming methods


@dataclass(frozen=True)
class OtherMessage:
    """Any message the hub reacts to only by type (Ping, Close, Completion, Cancel, ...)."""

    type: int
    invocation_id: str | None = None  # Completions: the server invocation they answer
    error: str | None = None  # Completions: the client's error text


Message = Invocation | OtherMessage


class RecordReader:
    """Splits a byte stream into ``\\x1e``-terminated records; records may span or share frames."""

    def __init__(self, max_record_bytes: int) -> None:
        self._max = max_record_bytes
        self._pending = ""

    def feed(self, text: str) -> list[str]:
        *complete, rest = (self._pending + text).split(RECORD_SEPARATOR)
        for record in complete:
            self._check_size(record)
        self._check_size(rest)
        self._pending = rest
        return complete

    def _check_size(self, record: str) -> None:
        # Cheap length test first: UTF-8 never has fewer bytes than characters.
        if len(record) > self._max or len(record.encode()) > self._max:
            raise MessageTooLarge(self._max)


def frame(message: dict[str, Any]) -> str:
    """One JSON record as the .NET writer produces it (compact, record separator appended)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False) + RECORD_SEPARATOR


def parse_handshake(record: str) -> HandshakeRequest:
    """Parse the first record. Malformed input gives ASP.NET's generic handshake failure text."""
    try:
        body = json.loads(record)
    except ValueError:
        raise HandshakeError(_HANDSHAKE_FAILED) from None
    if not isinstance(body, dict):
        raise HandshakeError(_HANDSHAKE_FAILED)
    protocol = body.get("protocol")
    version = body.get("version")
    if not isinstance(protocol, str) or not isinstance(version, int) or isinstance(version, bool):
        raise HandshakeError(_HANDSHAKE_FAILED)
    return HandshakeRequest(protocol=protocol, version=version)


_HANDSHAKE_FAILED = "An unexpected error occurred during connection handshake."
HANDSHAKE_CANCELED = "Handshake was canceled."


def check_handshake(request: HandshakeRequest, *, legacy_version_check: bool) -> None:
    """ASP.NET Core 8+ accepts JSON versions up to 2; 7 and older insist on exactly 1."""
    if request.protocol != "json":
        raise HandshakeError(f"The protocol '{request.protocol}' is not supported.")
    supported = request.version == 1 if legacy_version_check else request.version <= 2
    if not supported:
        raise HandshakeError(
            f"The server does not support version {request.version} of the '{request.protocol}' protocol."
        )


def handshake_response(error: str | None = None) -> str:
    return frame({} if error is None else {"error": error})


def parse_message(record: str) -> Message:
    """Parse one hub message as ``JsonHubProtocol`` does; unknown properties (``headers``...) are ignored."""
    try:
        body = json.loads(record)
    except ValueError as exc:
        raise ProtocolError(f"Error reading JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError("Unexpected JSON Token Type. Expected a JSON Object.")
    message_type = body.get("type")
    if message_type is None:
        raise ProtocolError("Missing required property 'type'.")
    if not isinstance(message_type, int) or isinstance(message_type, bool):
        raise ProtocolError("Expected 'type' to be of type Integer.")
    if message_type not in (MessageType.INVOCATION, MessageType.STREAM_INVOCATION):
        invocation_id, error = body.get("invocationId"), body.get("error")
        return OtherMessage(
            type=message_type,
            invocation_id=invocation_id if isinstance(invocation_id, str) else None,
            error=error if isinstance(error, str) else None,
        )
    invocation_id = body.get("invocationId")
    if invocation_id is not None and not isinstance(invocation_id, str):
        raise ProtocolError("Expected 'invocationId' to be of type String.")
    target = body.get("target")
    if target is None:
        raise ProtocolError("Missing required property 'target'.")
    if not isinstance(target, str):
        raise ProtocolError("Expected 'target' to be of type String.")
    if "arguments" not in body:
        raise ProtocolError("Missing required property 'arguments'.")
    arguments = body["arguments"]
    if not isinstance(arguments, list):
        raise ProtocolError("Expected 'arguments' to be of type Array.")
    streaming = message_type == MessageType.STREAM_INVOCATION
    if streaming and not invocation_id:
        raise ProtocolError("Missing required property 'invocationId'.")
    # An empty id counts as none, as in DefaultHubDispatcher (string.IsNullOrEmpty).
    return Invocation(
        invocation_id=invocation_id or None, target=target, arguments=arguments, streaming=streaming
    )


def invocation(target: str, arguments: list[Any]) -> str:
    """A server push: an Invocation without ``invocationId`` (the client must not answer)."""
    return frame({"type": MessageType.INVOCATION, "target": target, "arguments": arguments})


def completion_result(invocation_id: str, result: Any) -> str:
    # .NET writes "result": null for void methods (CompletionMessage.WithResult(id, null)).
    return frame({"type": MessageType.COMPLETION, "invocationId": invocation_id, "result": result})


def completion_error(invocation_id: str, error: str) -> str:
    return frame({"type": MessageType.COMPLETION, "invocationId": invocation_id, "error": error})


PING = frame({"type": MessageType.PING})


def close_message(*, error: str | None = None, allow_reconnect: bool = False) -> str:
    body: dict[str, Any] = {"type": MessageType.CLOSE}
    if error is not None:
        body["error"] = error
    if allow_reconnect:
        body["allowReconnect"] = True
    return frame(body)


CLOSED_WITH_ERROR = "Connection closed with an error."


def build_error_message(message: str, exception_type: str, detail: str, *, include_details: bool) -> str:
    """``ErrorMessageHelper.BuildErrorMessage``: the exception is appended only for a HubException or when
    detailed errors are on."""
    if exception_type == "HubException" or include_details:
        return f"{message} {exception_type}: {detail}"
    return message


def invocation_error(target: str, exception_type: str, detail: str, *, detailed_errors: bool) -> str:
    """The completion error for a hub method that threw."""
    return build_error_message(
        f"An unexpected error occurred invoking '{target}' on the server.",
        exception_type,
        detail,
        include_details=detailed_errors,
    )


def streaming_mismatch_error(target: str) -> str:
    return f"The client attempted to invoke the non-streaming '{target}' method with a streaming invocation."


def binding_error(target: str, exception_type: str, detail: str, *, detailed_errors: bool) -> str:
    """The completion error when the arguments could not be bound (wrong count or types, unknown method)."""
    return build_error_message(
        f"Failed to invoke '{target}' due to an error on the server.",
        exception_type,
        detail,
        include_details=detailed_errors,
    )
