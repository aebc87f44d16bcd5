"""Negotiate (``POST {hub}/negotiate``, v1 falling back to v0) and the WebSocket URL it leads to."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from communication_operator.hub.errors import AuthenticationFailed, HandshakeFailed, NotConnected
from communication_operator.redaction import redact_url_tokens


class _Config(Protocol):
    @property
    def ssl_context(self) -> ssl.SSLContext | bool: ...


@dataclass(frozen=True)
class Negotiation:
    connection_id: str
    transport_id: str  # connectionToken on v1, connectionId on v0


async def negotiate(http: aiohttp.ClientSession, url: str, token: str | None, config: _Config) -> Negotiation:
    negotiate_url = f"{url}/negotiate?negotiateVersion=1"
    try:
        async with http.post(negotiate_url, headers=auth_header(token), ssl=config.ssl_context) as response:
            if response.status in (401, 403):
                raise AuthenticationFailed(f"negotiate refused with HTTP {response.status}")
            if response.status != 200:
                raise HandshakeFailed(f"negotiate answered HTTP {response.status}")
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise NotConnected(
            f"cannot reach the controller at {url}: {redact_url_tokens(str(exc)) or type(exc).__name__}"
        ) from None
    except json.JSONDecodeError:
        raise HandshakeFailed("negotiate returned a body that is not JSON") from None
    if not isinstance(body, dict):
        raise HandshakeFailed("negotiate returned a body that is not a JSON object")
    if body.get("error"):
        raise HandshakeFailed(f"negotiate refused: {body['error']}")
    if body.get("url"):
        raise HandshakeFailed(
            "negotiate redirected to another service (Azure SignalR), which is not supported"
        )
    transports = body.get("availableTransports") or []
    if not any(isinstance(t, dict) and t.get("transport") == "WebSockets" for t in transports):
        raise HandshakeFailed("the controller does not offer the WebSockets transport")
    connection_id = body.get("connectionId")
    if not isinstance(connection_id, str) or not connection_id:
        raise HandshakeFailed("negotiate returned no connectionId")
    token_for_transport = body.get("connectionToken") if body.get("negotiateVersion", 0) >= 1 else None
    return Negotiation(
        connection_id, token_for_transport if isinstance(token_for_transport, str) else connection_id
    )


def websocket_url(url: str, transport_id: str, token: str | None) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = f"id={quote(transport_id, safe='')}"
    if token:
        query += f"&access_token={quote(token, safe='')}"
    return urlunsplit((scheme, parts.netloc, parts.path, query, ""))


def auth_header(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
