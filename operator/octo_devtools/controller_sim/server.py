"""The simulator as one aiohttp application: the operator hub plus the admin API."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from octo_devtools.controller_sim import persistence
from octo_devtools.controller_sim.admin import AdminApi
from octo_devtools.controller_sim.hub import HUB_PATH, OperatorHub
from octo_devtools.controller_sim.options import SimulatorOptions
from octo_devtools.controller_sim.state import ControllerState

logger = logging.getLogger(__name__)


class Simulator:
    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = options or SimulatorOptions()
        self._state_file = Path(self.options.state_file) if self.options.state_file else None
        self.state = persistence.load(self._state_file) if self._state_file else ControllerState()
        self.hub = OperatorHub(self.options, self.state, self._persist)
        self.admin = AdminApi(self.state, self.hub, self._persist)
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None
        self._saved = persistence.render(self.state) if self._state_file else ""

    @property
    def hub_url(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the simulator is not running")
        return self.base_url + HUB_PATH

    def _persist(self) -> None:
        """Save after every call that may have changed something; most calls change nothing to save."""
        if self._state_file is None:
            return
        text = persistence.render(self.state)
        if text != self._saved:
            persistence.save(self.state, self._state_file, text)
            self._saved = text

    def build_app(self) -> web.Application:
        app = web.Application()
        app.add_routes(self.hub.routes())
        app.add_routes(self.admin.routes())
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 = a free port); returns the base URL (the controller URI)."""
        # No access log: aiohttp's prints query strings, which carry connection and bearer tokens.
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.base_url = f"http://{url_host}:{bound_port}"
        logger.info("controller simulator listening on %s (hub %s)", self.base_url, self.hub_url)
        return self.base_url

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop listening. Graceful: every client first gets Close with ``allowReconnect: true``,
        as ASP.NET Core sends on application shutdown; otherwise sockets are dropped."""
        if self._runner is None:
            return
        handlers = self.hub.handler_tasks()
        if graceful:
            self.hub.thaw()
            self.hub.close_all(allow_reconnect=True)
        else:
            self.hub.drop_all()
        await self.hub.wait_finished(handlers, timeout=3.0)
        await self._runner.cleanup()
        self._runner = None
        logger.info("controller simulator stopped")
