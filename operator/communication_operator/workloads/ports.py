"""What the workloads need from the world outside the process: helm and the hub.

:class:`~.helm.HelmCli` satisfies :class:`HelmPort`; the unit tests' doubles
(``tests/unit/workloads/doubles.py``) are checked against both ports by mypy. The cluster ports live
beside their adapters (:class:`~.secrets.SecretStore`, :class:`~.replicas.ReplicaReader`,
:class:`~.watcher.DeployWatcher`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from communication_operator.contracts import ServerMethod
from communication_operator.workloads.helm import HelmResult, HelmVersion

Delivery = asyncio.Future[bool] | None


class ReportPort(Protocol):
    """What the workloads need from :class:`communication_operator.hub.HubConnection`."""

    async def report(self, method: ServerMethod, *args: Any) -> Delivery: ...


class HelmPort(Protocol):
    """The helm operations a deploy, an undeploy and the reverse sync run (octo-spec §4.2-§4.4)."""

    async def version(self) -> HelmVersion: ...

    async def repo_add(self, alias: str, url: str, username: str | None, password: str | None) -> None: ...

    async def repo_update(self, alias: str) -> None: ...

    async def registry_login(self, host: str, username: str, password: str) -> None: ...

    async def upgrade_install(
        self,
        release: str,
        chart_ref: str,
        *,
        namespace: str,
        values_files: Sequence[Path],
        chart_version: str | None,
        timeout_seconds: float,
        history_max: int,
        labels: Mapping[str, str],
        dry_run: bool = False,
        set_values: Mapping[str, str] | None = None,
        force_conflicts: bool = False,
        secrets: Iterable[str] = (),
    ) -> HelmResult: ...

    async def uninstall(self, release: str, namespace: str) -> HelmResult: ...

    async def history(
        self, release: str, namespace: str, max_revisions: int = 20
    ) -> list[dict[str, Any]]: ...

    async def rollback(self, release: str, namespace: str, revision: int, timeout_seconds: float) -> None: ...

    async def list_releases(
        self, namespace: str, selector: str | None = None, name_filter: str | None = None
    ) -> list[dict[str, Any]]: ...
