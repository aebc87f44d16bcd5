"""A small real OAuth2 issuer on loopback (aiohttp) for tests of the operator's token handling.

It serves OIDC discovery and a client-credentials token endpoint. Each token request takes the next
scripted answer from :attr:`TokenIssuer.answers` (a dict is sent as JSON with status 200, a
``(status, body)`` pair as given); with nothing scripted it issues ``token-<n>`` valid for an hour.
``issuer.down = True`` makes every request fail at the HTTP level (503), like an issuer behind a
proxy that lost its backend. Every token request's form is recorded in :attr:`TokenIssuer.forms`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Answer = dict[str, Any] | tuple[int, str]


@dataclass
class TokenIssuer:
    url: str = ""
    answers: list[Answer] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    down: bool = False
    issued: int = 0

    @property
    def requests(self) -> int:
        """Token requests received so far (refused ones included)."""
        return len(self.forms)

    async def _discovery(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="issuer unavailable")
        return web.json_response({"issuer": self.url, "token_endpoint": f"{self.url}/connect/token"})

    async def _token(self, request: web.Request) -> web.Response:
        self.forms.append({k: str(v) for k, v in (await request.post()).items()})
        if self.down:
            return web.Response(status=503, text="issuer unavailable")
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, tuple):
                status, text = answer
                return web.Response(status=status, text=text, content_type="application/json")
            return web.json_response(answer)
        self.issued += 1
        return web.json_response(
            {"access_token": f"token-{self.issued}", "token_type": "Bearer", "expires_in": 3600}
        )


@contextlib.asynccontextmanager
async def running_token_issuer() -> AsyncIterator[TokenIssuer]:
    issuer = TokenIssuer()
    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", issuer._discovery)
    app.router.add_post("/connect/token", issuer._token)
    runner = web.AppRunner(app, access_log=None)  # the access log would show nothing secret, but stays quiet
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    issuer.url = f"http://127.0.0.1:{port}"
    try:
        yield issuer
    finally:
        await runner.cleanup()
