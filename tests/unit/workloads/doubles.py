"""Test doubles for the workload services' unit tests: an in-memory hub, Secret store and watcher,
and :class:`Harness`, which wires them to a :class:`WorkloadService` running the stand-in helm
process (fake_helm.py).

mypy checks them against the ports they stand in for (:func:`_ports_satisfied`), like the pool
doubles in ``tests/unit/pools/doubles.py``. Integration tests use the real hub, API server and helm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from communication_operator.contracts import (
    ServerMethod,
    WorkloadDeployedDto,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
)
from communication_operator.hub.ports import ReportPort
from communication_operator.metrics import NAMESPACE, OperatorMetrics
from communication_operator.workloads.helm import HelmCli, HelmError, HelmResult, HelmVersion
from communication_operator.workloads.naming import release_name
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.replicas import ReplicaReader
from communication_operator.workloads.repository import repository_alias
from communication_operator.workloads.rollout import RolloutReader
from communication_operator.workloads.secrets import SecretSnapshot, SecretStore
from communication_operator.workloads.service import WorkloadService
from communication_operator.workloads.signals.model import Signal
from communication_operator.workloads.values import OperatorContext
from communication_operator.workloads.watcher import DeployWatcher, ProgressSink, WatcherFactory

from .fake_helm import FakeHelm

TENANT = "acme"
POOL = "65f0c0ffee0000000000aaaa"
WORKLOAD = "65f0c0ffee0000000000bbbb"
RELEASE = release_name(TENANT, WORKLOAD)
REPO = "https://charts.example/stable"
ALIAS = repository_alias(REPO)
BROKER_PASSWORD = "broker-s3cret-pw"


class RecordingHub:
    def __init__(self) -> None:
        self.reports: list[tuple[ServerMethod, Any]] = []

    async def report(self, method: ServerMethod, *args: Any) -> None:
        self.reports.append((method, args[0]))

    def statuses(self) -> list[WorkloadDeploymentStatusDto]:
        return [
            dto for method, dto in self.reports if method is ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS
        ]

    def progress(self) -> list[WorkloadDeploymentProgressDto]:
        return [
            dto for method, dto in self.reports if method is ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS
        ]

    def texts(self) -> list[str]:
        return [
            getattr(dto, "message", None) or getattr(dto, "status_message", "") or ""
            for _, dto in self.reports
        ]


class MemorySecrets:
    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: list[tuple[str, str]] = []

    async def apply(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str],
        workload_name: str,
    ) -> None:
        self.operations.append(("apply", name))
        self.secrets[(namespace, name)] = {
            "data": dict(data),
            "labels": dict(labels),
            "workload": workload_name,
        }

    async def delete(self, namespace: str, name: str) -> bool:
        self.operations.append(("delete", name))
        return self.secrets.pop((namespace, name), None) is not None

    async def read(self, namespace: str, name: str) -> SecretSnapshot | None:
        stored = self.secrets.get((namespace, name))
        if stored is None:
            return None
        return SecretSnapshot(data=dict(stored["data"]), labels=dict(stored.get("labels", {})))

    async def restore(self, namespace: str, name: str, snapshot: SecretSnapshot | None) -> None:
        self.operations.append(("restore", name))
        if snapshot is None:
            self.secrets.pop((namespace, name), None)
        else:
            self.secrets[(namespace, name)] = {"data": dict(snapshot.data), "labels": dict(snapshot.labels)}


class FakeWatcher:
    """Stands in for ReleaseWatcher: the test decides what it reports and when it calls a signal fatal."""

    def __init__(self, release: str, namespace: str, sink: ProgressSink, secrets: Sequence[str]) -> None:
        self.release = release
        self.namespace = namespace
        self.sink = sink
        self.secrets = secrets
        self._fatal = asyncio.Event()
        self.text = ""
        self.fatal_list: tuple[Signal, ...] = ()
        self.started = asyncio.Event()
        self.stopped = False

    @property
    def fatal(self) -> asyncio.Event:
        return self._fatal

    async def start(self) -> None:
        self.started.set()

    async def stop(self) -> None:
        self.stopped = True

    def fatal_signals(self) -> tuple[Signal, ...]:
        return self.fatal_list

    def snapshot(self) -> str:
        return self.text

    async def emit(self, text: str) -> None:
        self.text = text
        await self.sink(text)


class ScriptedHelm:
    """An in-memory :class:`HelmPort` for the step tests: records each call as ``(operation, args)``,
    answers from what the test set, raises the :class:`HelmError` set for an operation, and holds an
    ``upgrade`` until :attr:`upgrade_may_finish` is set (when :attr:`hold_upgrade`)."""

    def __init__(self, major: int = 4) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.major = major
        self.histories: list[list[dict[str, Any]]] = []  # answers of successive history calls
        self.releases: list[dict[str, Any]] = []
        self.failures: dict[str, HelmError | ValueError] = {}
        self.hold_upgrade = False
        self.upgrade_may_finish = asyncio.Event()

    def _call(self, operation: str, **args: Any) -> None:
        self.calls.append((operation, args))
        failure = self.failures.get(operation)
        if failure is not None:
            raise failure

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]

    async def version(self) -> HelmVersion:
        self._call("version")
        return HelmVersion(self.major, 0, 0)

    async def repo_add(self, alias: str, url: str, username: str | None, password: str | None) -> None:
        self._call("repo-add", alias=alias, url=url, username=username, password=password)

    async def repo_update(self, alias: str) -> None:
        self._call("repo-update", alias=alias)

    async def registry_login(self, host: str, username: str, password: str) -> None:
        self._call("registry-login", host=host, username=username, password=password)

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
    ) -> HelmResult:
        operation = "dry-run" if dry_run else "upgrade"
        self._call(
            operation,
            release=release,
            chart_ref=chart_ref,
            namespace=namespace,
            chart_version=chart_version,
            set_values=dict(set_values or {}),
            force_conflicts=force_conflicts,
        )
        if not dry_run and self.hold_upgrade:
            await self.upgrade_may_finish.wait()
        return HelmResult("", "", 0.0)

    async def uninstall(self, release: str, namespace: str) -> HelmResult:
        self._call("uninstall", release=release, namespace=namespace)
        return HelmResult("", "", 0.0)

    async def history(self, release: str, namespace: str, max_revisions: int = 20) -> list[dict[str, Any]]:
        self._call("history", release=release, namespace=namespace, max_revisions=max_revisions)
        return self.histories.pop(0) if self.histories else []

    async def rollback(self, release: str, namespace: str, revision: int, timeout_seconds: float) -> None:
        self._call("rollback", release=release, namespace=namespace, revision=revision)

    async def list_releases(
        self, namespace: str, selector: str | None = None, name_filter: str | None = None
    ) -> list[dict[str, Any]]:
        self._call("list", namespace=namespace, selector=selector, name_filter=name_filter)
        return list(self.releases)


class Harness:
    """A WorkloadService over the stand-in helm process and the in-memory doubles."""

    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.fake = FakeHelm(tmp_path / "helm")
        self.hub: RecordingHub = RecordingHub()
        self.secrets = MemorySecrets()
        self.watchers: list[FakeWatcher] = []
        self.helm = HelmCli(binary=str(self.fake.binary), kill_grace=options.pop("kill_grace", 5.0))
        self.watcher_factory: WatcherFactory = self._watcher
        self.values = OperatorContext(
            pool_namespace="octo", broker_password=BROKER_PASSWORD, instance_prefix="test"
        )
        self.replicas: ReplicaReader | None = None
        self.rollouts: RolloutReader | None = None
        self.options = WorkloadOptions(
            namespace="octo", timeout_seconds=options.pop("timeout_seconds", 60), **options
        )
        self.service = self.rebuild()

    def rebuild(self) -> WorkloadService:
        """A new service from the harness's parts (a test replaces a part, then rebuilds)."""
        self.service = WorkloadService(
            self.hub,
            self.helm,
            self.secrets,
            self.watcher_factory,
            self.values,
            self.options,
            replicas=self.replicas,
            rollouts=self.rollouts,
        )
        return self.service

    def _watcher(
        self, release: str, namespace: str, sink: ProgressSink, secrets: Sequence[str]
    ) -> FakeWatcher:
        watcher = FakeWatcher(release, namespace, sink, secrets)
        self.watchers.append(watcher)
        return watcher

    async def deploy(self, **fields: Any) -> None:
        await self.service.on_workload_deployed(dto(**fields))

    async def settle(self, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            await self.service.wait_idle()


def dto(**fields: Any) -> WorkloadDeployedDto:
    base: dict[str, Any] = {
        "tenant_id": TENANT,
        "pool_rt_id": POOL,
        "workload_name": "Mesh Adapter",
        "workload_rt_id": WORKLOAD,
        "repository_url": REPO,
        "chart_name": "web",
        "chart_version": "",
    }
    return WorkloadDeployedDto(**{**base, **fields})


async def until(probe: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``probe()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def metric(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    """The value of one sample of ``metrics`` (``name`` without the namespace prefix); 0 when unset."""
    return metrics.registry.get_sample_value(f"{NAMESPACE}_{name}", labels) or 0.0


def deploys(metrics: OperatorMetrics, result: str) -> float:
    """Finished deploys with ``result`` (``success``, ``failure``, ``cancelled``)."""
    return metric(metrics, "workload_deploys_total", result=result)


def _ports_satisfied(
    harness: Harness,
) -> tuple[ReportPort, SecretStore, WatcherFactory, HelmPort, DeployWatcher]:
    """Never called: mypy checks here that each double (and the helm CLI) satisfies its port."""
    scripted: HelmPort = ScriptedHelm()
    assert scripted is not None
    return harness.hub, harness.secrets, harness._watcher, harness.helm, harness.watchers[0]
