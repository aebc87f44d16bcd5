"""A loopback HTTP chart repository: `helm package` + `helm repo index` of chart directories, served by
`http.server` in a thread, optionally behind basic auth."""

from __future__ import annotations

import base64
import functools
import hmac
import http.server
import logging
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

logger = logging.getLogger(__name__)


class ChartRepoError(RuntimeError):
    pass


class _Handler(http.server.SimpleHTTPRequestHandler):
    expected_auth: str | None = None

    def do_GET(self) -> None:
        if self.expected_auth is not None:
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), self.expected_auth.encode()):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="charts"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        super().do_GET()

    def do_HEAD(self) -> None:
        self.do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("chart repo: " + format, *args)


class ChartRepository:
    """Serves ``index.yaml`` and ``<name>-<version>.tgz`` for every chart directory given."""

    def __init__(
        self,
        chart_dirs: list[Path],
        workdir: Path,
        helm: Path,
        helm_env: dict[str, str],
        *,
        username: str | None = None,
        password: str | None = None,
        bind_host: str = "127.0.0.1",
        advertise_host: str | None = None,
    ) -> None:
        """``bind_host``/``advertise_host``: serve on every interface (``0.0.0.0``) and put a host that
        pods can reach into the index (kind), instead of loopback only."""
        self.chart_dirs = chart_dirs
        self.bind_host = bind_host
        self.advertise_host = advertise_host or bind_host
        self.root = workdir
        self.helm = helm
        self.helm_env = helm_env
        self.username = username
        self.password = password
        self.charts: dict[str, str] = {}
        self.url = ""
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _helm(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.helm), *args], capture_output=True, text=True, env=self.helm_env, check=False
        )
        if result.returncode != 0:
            raise ChartRepoError(f"helm {' '.join(args)} failed: {result.stderr.strip()}")

    def start(self) -> ChartRepository:
        self.root.mkdir(parents=True, exist_ok=True)
        auth = None
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            auth = f"Basic {token}"
        handler = type("ChartRepoHandler", (_Handler,), {"expected_auth": auth})
        self._server = http.server.ThreadingHTTPServer(
            (self.bind_host, 0), functools.partial(handler, directory=str(self.root))
        )
        self.url = f"http://{self.advertise_host}:{self._server.server_address[1]}"
        for chart in self.chart_dirs:
            meta = yaml.safe_load((chart / "Chart.yaml").read_text())
            self.charts[meta["name"]] = str(meta["version"])
            self._helm("package", str(chart), "--destination", str(self.root))
        self._helm("repo", "index", str(self.root), "--url", self.url)
        self._thread = threading.Thread(target=self._server.serve_forever, name="chart-repo", daemon=True)
        self._thread.start()
        return self

    @property
    def local_url(self) -> str:
        """The same repository through loopback (for checks from this host)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ChartRepository:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
