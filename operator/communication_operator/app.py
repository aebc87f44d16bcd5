"""Wiring: settings → Kubernetes client → hub → pool services → kopf, in one asyncio process.

:func:`run_operator` is the whole operator. ``communication-operator run`` calls it with the process
environment; tests call it as an asyncio task with a kubeconfig, a controller URL and a stop flag::

    stop = asyncio.Event()
    task = asyncio.create_task(run_operator(settings, stop_flag=stop, ready_flag=ready, kubeconfig=path))
    ...
    stop.set(); await task

Order at start: kopf runs the startup handler (hub started, retry loop started), logs in with our
credentials, then watches CommunicationPools. Order at stop (SIGTERM or the stop flag): kopf stops
watching and lets running handlers finish or cancels them, then the cleanup handler stops the pool
services, drains queued reports to the controller for up to ``OPERATOR__SHUTDOWNDRAINSECONDS`` and closes
the connection. Pools are not unregistered: the controller marks them Offline on disconnect, and the
next operator process registers them again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf

from communication_operator.contracts.profiles import ContractSelector
from communication_operator.hub import HubConnection
from communication_operator.hub.auth import ANONYMOUS_STARTUP_WARNING
from communication_operator.kube import KubeClient, KubeObjects
from communication_operator.metrics import MetricsServer, OperatorMetrics, start_metrics_server
from communication_operator.pools import (
    IN_PROGRESS_DELAY,
    DeployedWorkloadsSource,
    PoolProvisioner,
    PoolRegistrationService,
    PoolRegistry,
    PoolStatusWriter,
)
from communication_operator.pools.kinds import kind_for_contract
from communication_operator.redaction import redact_url_tokens, remember_secrets
from communication_operator.runtime.pools import bind_to_hub
from communication_operator.runtime.workloads import bind_workloads_to_hub, build_workload_service
from communication_operator.settings import Settings
from communication_operator.supervision import TaskSupervisor
from communication_operator.version import package_version
from communication_operator.workloads.deployed import HelmReleaseWorkloads
from communication_operator.workloads.scale import KubeReplicaPatcher, ScaleHandler
from communication_operator.workloads.service import WorkloadService

log = logging.getLogger(__name__)


@dataclass
class OperatorContext:
    """Everything the handlers reach through ``memo.context``."""

    settings: Settings
    kube: KubeClient
    objects: KubeObjects
    hub: HubConnection
    registry: PoolRegistry
    status: PoolStatusWriter
    registration: PoolRegistrationService
    provisioner: PoolProvisioner | None
    metrics: OperatorMetrics
    in_process: bool = False
    metrics_server: MetricsServer | None = None
    workloads: WorkloadService | None = None
    # The long-lived tasks (hub loops, registration retry); /healthz fails once one has died.
    supervisor: TaskSupervisor = field(default_factory=TaskSupervisor)
    _started: bool = field(default=False, init=False)
    _stopped: bool = field(default=False, init=False)

    async def start(self) -> None:
        """Start metrics, the registration retry loop and the hub; safe to call again after a failure.

        kopf retries a startup handler that raised (for example: the metrics port is in use). Marked
        started only once every step succeeded, and each step skips what already runs, so the retry
        completes the start instead of returning at once with the hub never started.
        """
        if self._started:
            return
        settings = self.settings
        if settings.auto_manage_pools and settings.watch_namespace not in ("", settings.pool_namespace):
            log.warning(
                "central mode creates CommunicationPools in %r but only %r is watched; "
                "set OPERATOR__WATCHNAMESPACE to %r or leave it empty",
                settings.pool_namespace,
                settings.watch_namespace,
                settings.pool_namespace,
            )
        log.info(
            "starting in %s mode: controller %s, watching %s",
            settings.mode_name,
            redact_url_tokens(settings.communication_controller_uri or ""),
            settings.watch_namespace or "all namespaces",
        )
        if not self.in_process and self.metrics_server is None:
            self.metrics_server = start_metrics_server(self.metrics, settings.metrics.port)
        self.registration.start()
        await self.hub.start()
        self._started = True

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.workloads is not None:
                # Stops helm runs (SIGTERM: releases are marked failed, not left pending-*).
                await self.workloads.shutdown()
            await self.registration.stop()
            await self.hub.stop(drain_timeout=self.settings.shutdown_drain_seconds)
            await self.status.close()
        finally:
            await self.kube.close()
            if self.metrics_server is not None:
                self.metrics_server.stop()
        log.info("stopped; pools stay registered until the controller notices the closed connection")


async def build_context(
    settings: Settings,
    *,
    kubeconfig: Path | None = None,
    kube_context: str | None = None,
    workloads: DeployedWorkloadsSource | None = None,
    in_process: bool = False,
) -> OperatorContext:
    """Create (but do not start) the clients and services for ``settings``."""
    # Before any client logs: a library's debug line may carry a configured secret (the broker
    # password in a pool's connection Secret, in base64).
    remember_secrets(settings.secret_values())
    options = settings.hub_options()
    if settings.authentication.enabled and not settings.authentication.tenant_id:
        log.warning("OPERATOR__AUTHENTICATION__TENANTID is not set; the controller expects the system tenant")
    token_provider = settings.token_provider()
    if token_provider is None:
        log.warning(ANONYMOUS_STARTUP_WARNING)
    metrics = OperatorMetrics()
    metrics.set_build_info(package_version(), settings.mode_name)
    supervisor = TaskSupervisor(metrics)
    kube = await KubeClient.create(kubeconfig, kube_context)
    objects = KubeObjects(kube.api)
    hub = HubConnection(options, token_provider=token_provider, metrics=metrics, supervisor=supervisor)
    hub.contract = ContractSelector(settings.contract)
    registry = PoolRegistry()
    status = PoolStatusWriter(objects, in_progress_delay=IN_PROGRESS_DELAY)
    provisioner = None
    if settings.auto_manage_pools:
        provisioner = PoolProvisioner(
            objects,
            namespace=settings.pool_namespace,
            broker_user=settings.broker_user,
            broker_password=settings.broker_password.get_secret_value() if settings.broker_password else None,
            # CommunicationPools for a pool-era controller, DeploymentSites for a DS-era one.
            kind_for=lambda: kind_for_contract(hub.contract.speaking),
        )
    # Workload deploys: hub handlers, and the workloads the reverse sync reports.
    workload_service = build_workload_service(
        settings, hub, kube.api, kubeconfig=kubeconfig, kube_context=kube_context, metrics=metrics
    )
    scale = ScaleHandler(workload_service, hub, KubeReplicaPatcher(kube.api), metrics=metrics)
    bind_workloads_to_hub(hub, workload_service, scale)
    if workloads is None:
        workloads = HelmReleaseWorkloads(
            kube.api, settings.pool_namespace, platform_namespace=settings.platform_namespace
        )
    registration = PoolRegistrationService(
        hub,
        registry,
        status,
        central=settings.auto_manage_pools,
        provisioner=provisioner,
        workloads=workloads,
        retry_seconds=settings.pool_registration_retry_seconds,
        pre_update_delay=settings.pre_update_tenant_delay_seconds,
        max_message_bytes=options.max_message_bytes,
        metrics=metrics,
        supervisor=supervisor,
    )
    bind_to_hub(hub, registration)
    return OperatorContext(
        settings=settings,
        kube=kube,
        objects=objects,
        hub=hub,
        registry=registry,
        status=status,
        registration=registration,
        provisioner=provisioner,
        metrics=metrics,
        in_process=in_process,
        workloads=workload_service,
        supervisor=supervisor,
    )


async def run_operator(
    settings: Settings,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    kubeconfig: Path | None = None,
    kube_context: str | None = None,
    workloads: DeployedWorkloadsSource | None = None,
    liveness: bool = True,
) -> None:
    """Run the operator until SIGTERM/SIGINT or until ``stop_flag`` is set.

    With a ``stop_flag`` the operator runs "in process" (tests, embedding): kopf does not arm its
    last-resort self-SIGKILL. ``ready_flag`` is set once kopf has started (startup handler done).

    kopf treats the event loop as its own: at shutdown it cancels every task created after it started,
    whoever created it. Next to other work on one loop (a test, an in-process simulator), use
    :class:`OperatorThread`, which gives the operator a loop of its own.
    """
    from communication_operator.handlers import build_registry, configure_kopf

    in_process = stop_flag is not None
    context = await build_context(
        settings, kubeconfig=kubeconfig, kube_context=kube_context, workloads=workloads, in_process=in_process
    )
    liveness_endpoint = (
        f"http://0.0.0.0:{settings.health.port}/healthz" if liveness and settings.health.port else None
    )
    kopf_settings = kopf.OperatorSettings()
    configure_kopf(kopf_settings, in_process=in_process)
    try:
        await kopf.operator(
            registry=build_registry(),
            settings=kopf_settings,
            memo=kopf.Memo(context=context),
            standalone=True,
            clusterwide=not settings.watch_namespace,
            namespaces=[settings.watch_namespace] if settings.watch_namespace else (),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            liveness_endpoint=liveness_endpoint,
        )
    finally:
        # kopf runs cleanup only after a successful start; close whatever is still open.
        await context.stop()


class OperatorThread:
    """The operator on its own thread and event loop, started and stopped from async code (tests).

    ``await runner.start()`` returns once kopf is ready (or raises what stopped it);
    ``await runner.stop()`` sets the stop flag and waits for a clean shutdown.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        kubeconfig: Path | None = None,
        kube_context: str | None = None,
        workloads: DeployedWorkloadsSource | None = None,
        name: str = "communication-operator",
    ) -> None:
        self.settings = settings
        self._kwargs: dict[str, Any] = {
            "kubeconfig": kubeconfig,
            "kube_context": kube_context,
            "workloads": workloads,
        }
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._done.is_set()

    def _main(self) -> None:
        try:
            asyncio.run(
                run_operator(
                    self.settings,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    liveness=False,
                    **self._kwargs,
                )
            )
        except BaseException as exc:
            self.error = exc
        finally:
            self._done.set()

    def _wait_ready_or_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.05) or self._done.is_set():
                return True
        return False

    async def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not await asyncio.to_thread(self._wait_ready_or_done, timeout):
            raise TimeoutError(f"the operator was not ready within {timeout:g} s")
        if self._done.is_set():
            raise RuntimeError("the operator stopped while starting") from self.error

    async def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        finished = await asyncio.to_thread(self._done.wait, timeout)
        if not finished:
            raise TimeoutError(f"the operator did not stop within {timeout:g} s")
        await asyncio.to_thread(self._thread.join, 5.0)
        if self.error is not None:
            raise RuntimeError("the operator failed") from self.error
