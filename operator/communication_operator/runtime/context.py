"""The running operator's services (:class:`Runtime`) and the one place that builds and wires them.

:func:`build_runtime` creates every client and service from the settings and binds the services to the
hub; :meth:`Runtime.start` and :meth:`Runtime.stop` are called by the kopf startup and cleanup handlers
(:mod:`communication_operator.handlers`), which reach the runtime through ``memo.context``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from communication_operator.hub import HubConnection
from communication_operator.kube import KubeClient, KubeObjects
from communication_operator.metrics import MetricsServer, OperatorMetrics, start_metrics_server
from communication_operator.pools import (
    DeployedWorkloadsSource,
    PoolProvisioner,
    PoolRegistrationService,
    PoolRegistry,
    PoolStatusWriter,
)
from communication_operator.pools.kinds import kind_for_contract
from communication_operator.redaction import redact_url_tokens, remember_secrets
from communication_operator.runtime.hub import build_hub
from communication_operator.runtime.pools import bind_to_hub, build_pool_services
from communication_operator.runtime.secrets import configured_secrets
from communication_operator.runtime.workloads import bind_workloads_to_hub, build_workload_service
from communication_operator.settings import Settings
from communication_operator.supervision import TaskSupervisor
from communication_operator.version import package_version
from communication_operator.workloads.deployed import HelmReleaseWorkloads
from communication_operator.workloads.scale import KubeReplicaPatcher, ScaleHandler
from communication_operator.workloads.service import WorkloadService

log = logging.getLogger(__name__)

UNWATCHED_POOL_NAMESPACE = (
    "central mode creates its pool resources (CommunicationPools or DeploymentSites) in %r "
    "but only %r is watched; "
    "set OPERATOR__WATCHNAMESPACE to %r or leave it empty"
)
STARTING = "starting in %s mode: controller %s, watching %s"
STOPPED = "stopped; pools stay registered until the controller notices the closed connection"


@dataclass
class Runtime:
    """Every service of one running operator; the kopf handlers reach it through ``memo.context``."""

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
                UNWATCHED_POOL_NAMESPACE,
                settings.pool_namespace,
                settings.watch_namespace,
                settings.pool_namespace,
            )
        log.info(
            STARTING,
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
        log.info(STOPPED)


async def build_runtime(
    settings: Settings,
    *,
    kubeconfig: Path | None = None,
    kube_context: str | None = None,
    workloads: DeployedWorkloadsSource | None = None,
    in_process: bool = False,
) -> Runtime:
    """Create (but do not start) the clients and services for ``settings``, bound to the hub."""
    # Before any client logs: a library's debug line may carry a configured secret (the broker
    # password in a pool's connection Secret, in base64).
    remember_secrets(configured_secrets(settings))
    metrics = OperatorMetrics()
    metrics.set_build_info(package_version(), settings.mode_name)
    supervisor = TaskSupervisor(metrics)
    hub = build_hub(settings, metrics, supervisor)
    kube = await KubeClient.create(kubeconfig, kube_context)
    objects = KubeObjects(kube.api)
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
    pools = build_pool_services(
        settings,
        objects,
        hub,
        workloads=workloads,
        max_message_bytes=hub.options.max_message_bytes,
        metrics=metrics,
        supervisor=supervisor,
        # CommunicationPools for a pool-era controller, DeploymentSites for a DS-era one.
        kind_for=lambda: kind_for_contract(hub.contract.speaking),
    )
    bind_to_hub(hub, pools.registration)
    return Runtime(
        settings=settings,
        kube=kube,
        objects=objects,
        hub=hub,
        registry=pools.registry,
        status=pools.status,
        registration=pools.registration,
        provisioner=pools.provisioner,
        metrics=metrics,
        in_process=in_process,
        workloads=workload_service,
        supervisor=supervisor,
    )
