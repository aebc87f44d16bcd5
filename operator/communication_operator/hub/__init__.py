"""The SignalR connection to the Communication Controller's ``/operatorHub``."""

from communication_operator.hub.backoff import Backoff
from communication_operator.hub.connection import HubConnection, HubOptions, TokenProvider
from communication_operator.hub.dispatch import HubStats
from communication_operator.hub.errors import (
    AuthenticationFailed,
    HandshakeFailed,
    HubConnectionError,
    HubError,
    InvocationTimeout,
    MessageNotEncodable,
    MessageTooLarge,
    NotConnected,
)

__all__ = [
    "AuthenticationFailed",
    "Backoff",
    "HandshakeFailed",
    "HubConnection",
    "HubConnectionError",
    "HubError",
    "HubOptions",
    "HubStats",
    "InvocationTimeout",
    "MessageNotEncodable",
    "MessageTooLarge",
    "NotConnected",
    "TokenProvider",
]
