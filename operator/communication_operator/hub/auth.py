"""OAuth2 client-credentials tokens for the hub (octo-spec §7.4), fetched when a connect needs one.

The token is sent as a bearer header on negotiate and as ``access_token`` on the WebSocket URL
(the controller accepts both on hub paths). It is never logged and never put into hub messages.

Rules, as upstream's token holder:

* A token with less than :data:`MIN_REMAINING_SECONDS` (5 min) left is replaced before it is used,
  so a token issued for 4 minutes is replaced at the next connect.
* When the issuer fails (down, an error, an answer without a token) the previous token is kept while
  it is still valid, and the issuer is asked again after :data:`ISSUER_RETRY_SECONDS` (30 s) at the
  earliest, however often the connection retries.
* With no usable token the operator connects without one and says so in a warning each time: the
  controller decides (its ``LogOnly`` gate lets the connection in, ``Enforce`` refuses it and the
  connection retries on its normal schedule).

The token is only read at connect time: the controller authorises a connection when it opens, and a
live connection is not closed when its token expires.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import SecretStr

from communication_operator.redaction import redact_and_bound, redact_url_tokens, remember_secrets

log = logging.getLogger(__name__)

#: A token with less time than this left is replaced before it is used (upstream: 5 min).
MIN_REMAINING_SECONDS = 300.0
#: After a failed token request the issuer is asked again no sooner than this (upstream: 30 s).
ISSUER_RETRY_SECONDS = 30.0
#: Characters of the issuer's error field kept in the reason logged (redacted, then cut).
ISSUER_ERROR_LIMIT = 200
#: Lifetime assumed when the issuer's answer has no ``expires_in``.
DEFAULT_LIFETIME_SECONDS = 3600.0

#: Warning formats; ``reason`` never contains the client secret or a token.
NO_TOKEN_WARNING = "connecting to the controller without an access token: %s"
KEEPING_TOKEN_WARNING = "could not refresh the access token (%s); using the current one, valid %d s more"
ISSUER_FAILED_WARNING = "no access token from %s: %s; asking again in %d s at the earliest"
ANONYMOUS_STARTUP_WARNING = (
    "authentication to the controller is not configured (OPERATOR__AUTHENTICATION__ISSUERURI and "
    "OPERATOR__AUTHENTICATION__CLIENTID); the operator connects without an access token"
)


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
    min_remaining: float = MIN_REMAINING_SECONDS
    retry_interval: float = ISSUER_RETRY_SECONDS
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _expires_at: float = field(default=0.0, init=False)
    _failed_at: float | None = field(default=None, init=False)
    _problem: str | None = field(default=None, init=False)
    _token_endpoint: str | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @property
    def problem(self) -> str | None:
        """Why the last attempt to get a token failed; None after a success."""
        return self._problem

    async def get_token(self) -> str | None:
        """The token to present on the next connect, or None (logged) when there is none to be had."""
        async with self._lock:
            if self._token is not None and self._remaining() >= self.min_remaining:
                return self._token
            if self._failed_at is None or self.clock() - self._failed_at >= self.retry_interval:
                try:
                    return await self.fetch_token()
                except TokenError:
                    log.warning(
                        ISSUER_FAILED_WARNING,
                        redact_url_tokens(self.issuer_uri),
                        self._problem,
                        round(self.retry_interval),
                    )
            if self._token is not None and self._remaining() > 0:
                log.warning(KEEPING_TOKEN_WARNING, self._problem, int(self._remaining()))
                return self._token
            log.warning(NO_TOKEN_WARNING, self._problem or "the access token has expired")
            return None

    async def fetch_token(self) -> str:
        """Ask the issuer for a new token now; raises :class:`TokenError` (the reason) if it gives none."""
        try:
            token, lifetime = await self._request()
        except (TokenError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._failed_at = self.clock()
            self._problem = _describe(exc)
            raise TokenError(
                f"cannot obtain an access token from {redact_url_tokens(self.issuer_uri)}: {self._problem}"
            ) from None
        remember_secrets([token])  # a library's debug line may show it (the negotiate URL, headers)
        self._token, self._expires_at = token, self.clock() + lifetime
        self._failed_at = self._problem = None
        log.info("obtained an access token for the controller (valid %d s)", lifetime)
        return token

    def _remaining(self) -> float:
        return self._expires_at - self.clock()

    async def _request(self) -> tuple[str, float]:
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
                token = body.get("access_token") if isinstance(body, dict) else None
                if response.status != 200 or not isinstance(token, str) or not token:
                    error = body.get("error") if isinstance(body, dict) else None
                    shown = (
                        redact_and_bound(str(error), ISSUER_ERROR_LIMIT, keep_end=False) if error else None
                    )
                    raise TokenError(
                        f"token endpoint answered HTTP {response.status} ({shown or 'no token'})"
                    )
        try:
            lifetime = float(body.get("expires_in", DEFAULT_LIFETIME_SECONDS))
        except (TypeError, ValueError):
            raise TokenError("token endpoint answered an expires_in that is not a number") from None
        return token, lifetime

    async def _discover(self, http: aiohttp.ClientSession, ssl_context: ssl.SSLContext | bool) -> str:
        url = self.issuer_uri.rstrip("/") + "/.well-known/openid-configuration"
        async with http.get(url, ssl=ssl_context) as response:
            document = await _json_or_none(response)
        endpoint = document.get("token_endpoint") if isinstance(document, dict) else None
        if not isinstance(endpoint, str):
            raise TokenError(f"{url} names no token_endpoint")
        self._token_endpoint = endpoint
        return endpoint


def _describe(exc: BaseException) -> str:
    """A reason for logs: the TokenError's text, or the transport error's type and text.

    Redacted: a URL password in the issuer URI would otherwise reach the log through aiohttp's texts.
    """
    if isinstance(exc, TokenError):
        return redact_url_tokens(str(exc))
    return redact_url_tokens(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    """The JSON body, or None for anything else (a proxy's HTML error page must be a TokenError)."""
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None
