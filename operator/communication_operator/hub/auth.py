"""OAuth2 client-credentials tokens for the hub, refreshed before they expire.

The token is sent as a bearer header on negotiate and as ``access_token`` on the WebSocket URL
(the controller accepts both on hub paths). It is never logged and never put into hub messages.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import SecretStr

log = logging.getLogger(__name__)


class TokenError(Exception):
    """No token could be obtained from the issuer."""


@dataclass
class ClientCredentialsTokenProvider:
    issuer_uri: str
    client_id: str
    client_secret: SecretStr
    tenant_id: str | None = None
    scope: str = "octo_api"
    verify_tls: bool = True
    ca_file: str | None = None
    refresh_margin: float = 300.0  # refresh 5 min before expiry (or at half-life for short tokens)
    _token: str | None = field(default=None, init=False, repr=False)
    _expires_at: float = field(default=0.0, init=False)
    _margin: float = field(default=300.0, init=False)
    _token_endpoint: str | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def get_token(self) -> str:
        async with self._lock:
            if self._token is not None and time.monotonic() < self._refresh_at:
                return self._token
            try:
                await self._fetch()
            except (TokenError, aiohttp.ClientError, TimeoutError) as exc:
                if self._token is not None and time.monotonic() < self._expires_at:
                    log.warning("token refresh failed, keeping the current token until it expires: %s", exc)
                    return self._token
                raise TokenError(f"cannot obtain an access token from {self.issuer_uri}: {exc}") from None
            assert self._token is not None
            return self._token

    @property
    def _refresh_at(self) -> float:
        return self._expires_at - self._margin

    async def _fetch(self) -> None:
        ssl_context: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=self.ca_file) if self.verify_tls else False
        )
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            endpoint = self._token_endpoint or await self._discover(http, ssl_context)
            form = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret.get_secret_value(),
                "scope": self.scope,
            }
            if self.tenant_id:
                form["acr_values"] = f"tenant:{self.tenant_id}"
            async with http.post(endpoint, data=form, ssl=ssl_context) as response:
                body = await _json_or_none(response)
                if response.status != 200 or not isinstance(body, dict) or "access_token" not in body:
                    error = body.get("error") if isinstance(body, dict) else None
                    raise TokenError(
                        f"token endpoint answered HTTP {response.status} ({error or 'no token'})"
                    )
        lifetime = float(body.get("expires_in", 3600))
        self._margin = min(self.refresh_margin, lifetime / 2)
        self._token = str(body["access_token"])
        self._expires_at = time.monotonic() + lifetime
        log.info("obtained an access token for the controller (valid %d s)", lifetime)

    async def _discover(self, http: aiohttp.ClientSession, ssl_context: ssl.SSLContext | bool) -> str:
        url = self.issuer_uri.rstrip("/") + "/.well-known/openid-configuration"
        async with http.get(url, ssl=ssl_context) as response:
            document = await _json_or_none(response)
        endpoint = document.get("token_endpoint") if isinstance(document, dict) else None
        if not isinstance(endpoint, str):
            raise TokenError(f"{url} names no token_endpoint")
        self._token_endpoint = endpoint
        return endpoint


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    """The JSON body, or None for anything else (a proxy's HTML error page must be a TokenError)."""
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None
