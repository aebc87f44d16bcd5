"""Errors raised by the hub connection."""

from __future__ import annotations

HUB_EXCEPTION_MARKER = "HubException: "


class HubConnectionError(Exception):
    """Base of every hub connection error."""


class NotConnected(HubConnectionError):
    """The controller is not reachable right now (down, reconnecting, or the call was cut off)."""


class InvocationTimeout(NotConnected):
    """No completion arrived in time; the call may or may not have reached the controller."""


class HubError(HubConnectionError):
    """The controller answered an invocation with an error completion.

    ``hub_message`` is the text a ``HubException`` on the server carried (after ``HubException: ``),
    or the whole text when the server withheld the detail (any other server fault).
    """

    def __init__(self, method: str, error: str) -> None:
        self.method = method
        self.error = error
        _, marker, detail = error.partition(HUB_EXCEPTION_MARKER)
        self.hub_message = detail if marker else error
        self.is_hub_exception = bool(marker)
        super().__init__(f"{method}: {self.hub_message}")


class MessageTooLarge(HubConnectionError):
    """A message would exceed the server's receive limit; sending it would close the connection."""


class MessageNotEncodable(HubConnectionError):
    """A message cannot be written as JSON in UTF-8 (a value the encoder does not know, a lone surrogate)."""


class HandshakeFailed(HubConnectionError):
    """Negotiate or the SignalR handshake was refused (a reason to back off, not to give up)."""


class AuthenticationFailed(HandshakeFailed):
    """The controller refused our credentials (HTTP 401/403 on negotiate)."""
