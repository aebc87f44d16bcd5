"""Composition of the pool services: settings → services, and services → hub.

Part of the composition root (:mod:`communication_operator.runtime`): the only place that knows both
the settings and the hub connection's push interface. The services in :mod:`communication_operator.pools`
take plain options and ports and know neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from communication_operator.contracts import ClientMethod
from communication_operator.metrics import OperatorMetrics
from communication_operator.pools import (
    IN_PROGRESS_DELAY,
    DeployedWorkloadsSource,
    HubPort,
    PoolProvisioner,
    PoolRegistrationService,
    PoolRegistry,
    PoolStatusWriter,
)
from communication_operator.pools.provisioner import ProvisionerPort
from communication_operator.pools.status import StatusPort
from communication_operator.settings import Settings
from communication_operator.supervision import TaskSupervisor


class PushSource(Protocol):
    """The parts of :class:`~communication_operator.hub.HubConnection` :func:`bind_to_hub` uses."""

    state_listeners: list[Callable[[bool], None]]

    def on(self, method: ClientMethod | str, handler: Callable[..., Awaitable[None]]) -> None: ...

    def on_connected(self, hook: Callable[[], Awaitable[None]]) -> None: ...


def bind_to_hub(hub: PushSource, service: PoolRegistrationService) -> None:
    """Wire the service to the hub: connect hook, state listener and the pool pushes."""
    hub.on_connected(service.on_connected)
    hub.state_listeners.append(service.on_connection_state)
    hub.on(ClientMethod.POOL_DEPLOYED, service.pool_deployed)
    hub.on(ClientMethod.POOL_UNDEPLOYED, service.pool_undeployed)
    hub.on(ClientMethod.PRE_UPDATE_TENANT, service.pre_update_tenant)


class PoolKubePort(StatusPort, ProvisionerPort, Protocol):
    """What the pool services need from :class:`~communication_operator.kube.KubeObjects`."""


@dataclass(frozen=True)
class PoolServices:
    """The pool services of one operator process."""

    registry: PoolRegistry
    status: PoolStatusWriter
    provisioner: PoolProvisioner | None  # central mode only
    registration: PoolRegistrationService


def build_provisioner(settings: Settings, objects: PoolKubePort) -> PoolProvisioner | None:
    """Central mode (``OPERATOR__AUTOMANAGEPOOLS``) provisions pools the controller deploys; edge does not."""
    if not settings.auto_manage_pools:
        return None
    password = settings.broker_password.get_secret_value() if settings.broker_password else None
    return PoolProvisioner(
        objects,
        namespace=settings.pool_namespace,
        broker_user=settings.broker_user,
        broker_password=password,
    )


def build_pool_services(
    settings: Settings,
    objects: PoolKubePort,
    hub: HubPort,
    *,
    workloads: DeployedWorkloadsSource,
    max_message_bytes: int,
    metrics: OperatorMetrics,
    supervisor: TaskSupervisor,
) -> PoolServices:
    """Build (not start, not bind) the pool services for ``settings``."""
    registry = PoolRegistry()
    status = PoolStatusWriter(objects, in_progress_delay=IN_PROGRESS_DELAY)
    provisioner = build_provisioner(settings, objects)
    registration = PoolRegistrationService(
        hub,
        registry,
        status,
        central=settings.auto_manage_pools,
        provisioner=provisioner,
        workloads=workloads,
        retry_seconds=settings.pool_registration_retry_seconds,
        pre_update_delay=settings.pre_update_tenant_delay_seconds,
        max_message_bytes=max_message_bytes,
        metrics=metrics,
        supervisor=supervisor,
    )
    return PoolServices(registry, status, provisioner, registration)
