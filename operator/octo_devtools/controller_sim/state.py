"""The Communication Controller's operator-facing semantics, without any networking.

Pools, workloads, operator connections, routing and queueing as described in octo-spec §1.2, §1.3,
§1.5 and §2. Every operation appends the pushes it causes to an outbox; the hub layer drains it with
:meth:`ControllerState.take_pushes` and delivers them. Hub-method failures raise :class:`HubError`
(sent to the caller as a ``HubException``); admin failures raise :class:`AdminError`.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from communication_operator.contracts import (
    ClientMethod,
    CommunicationState,
    DeployedPoolDto,
    DeploymentState,
    OperatorDeployedPoolReportDto,
    PoolEnvironment,
    ScaleWorkloadDto,
    ServerMethod,
    ValueOverrideDto,
    WorkloadDeployedDto,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
    WorkloadScaleStatusDto,
    WorkloadType,
    WorkloadUndeployedDto,
)
from octo_devtools.controller_sim.deploys import DeployLog, Dispatch

_RT_ID = re.compile(r"^[0-9a-fA-F]{24}$")

PoolKey = tuple[str, str]  # (tenantId, poolRtId)

# Workload states from which "undeploy" is meaningful (octo-spec §2.2).
_ACTIVE_STATES = frozenset({DeploymentState.PENDING, DeploymentState.DEPLOYED, DeploymentState.ERROR})


class HubError(Exception):
    """Thrown by a hub method; the caller sees ``... HubException: <message>``."""


class AdminError(Exception):
    """An admin request the controller would refuse; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def new_rt_id() -> str:
    """A 24-hex MongoDB ObjectId-like id: 4 bytes of seconds, then 8 random bytes."""
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(8)}"


def is_rt_id(value: str) -> bool:
    return bool(_RT_ID.match(value))


@dataclass
class Pool:
    tenant_id: str
    pool_rt_id: str
    name: str
    environment: PoolEnvironment
    communication_state: CommunicationState = CommunicationState.UNREGISTERED
    deployment_state: DeploymentState = DeploymentState.UNDEPLOYED

    @property
    def key(self) -> PoolKey:
        return (self.tenant_id, self.pool_rt_id)


@dataclass
class Workload:
    tenant_id: str
    pool_rt_id: str
    workload_rt_id: str
    name: str
    workload_type: WorkloadType
    repository_url: str
    chart_name: str
    chart_version: str = ""
    repository_username: str | None = None
    repository_password: str | None = field(default=None, repr=False)
    values_yaml: str = ""
    values: list[ValueOverrideDto] = field(default_factory=list, repr=False)
    receives_cluster_secrets: bool = False
    ingress_enabled: bool = False
    hostname: str | None = None
    hibernated: bool = False
    deployment_state: DeploymentState = DeploymentState.UNDEPLOYED
    status_message: str | None = None
    progress: list[str] = field(default_factory=list)
    deploys: DeployLog = field(default_factory=DeployLog)

    @property
    def pool_key(self) -> PoolKey:
        return (self.tenant_id, self.pool_rt_id)

    def deployed_dto(self, *, is_reconciliation: bool) -> WorkloadDeployedDto:
        return WorkloadDeployedDto(
            tenant_id=self.tenant_id,
            pool_rt_id=self.pool_rt_id,
            workload_name=self.name,
            workload_rt_id=self.workload_rt_id,
            workload_type=self.workload_type,
            repository_url=self.repository_url,
            repository_username=self.repository_username,
            repository_password=self.repository_password,
            chart_name=self.chart_name,
            chart_version=self.chart_version,
            is_reconciliation=is_reconciliation,
            values_yaml=self.values_yaml,
            values=list(self.values),
            receives_cluster_secrets=self.receives_cluster_secrets,
            ingress_enabled=self.ingress_enabled,
            hostname=self.hostname,
            hibernated=self.hibernated,
        )

    def undeployed_dto(self) -> WorkloadUndeployedDto:
        return WorkloadUndeployedDto(
            tenant_id=self.tenant_id,
            pool_rt_id=self.pool_rt_id,
            workload_rt_id=self.workload_rt_id,
            workload_name=self.name,
            workload_type=self.workload_type,
        )


@dataclass
class OperatorConnection:
    connection_id: str
    registered_as_operator: bool = False
    # None = legacy operator (no mode declared, no enforcement); True = central; False = edge.
    auto_manage_pools: bool | None = None
    pools: set[PoolKey] = field(default_factory=set)


@dataclass(frozen=True)
class Push:
    """A controller → operator invocation (no invocationId) for the listed connections."""

    connection_ids: tuple[str, ...]
    target: str
    arguments: list[Any]


@dataclass
class ScaleReport:
    connection_id: str
    status: WorkloadScaleStatusDto


def _mode_name(auto_manage_pools: bool | None) -> str:
    return {True: "central", False: "edge", None: "legacy"}[auto_manage_pools]


class ControllerState:
    def __init__(self) -> None:
        self.pools: dict[str, Pool] = {}
        self.workloads: dict[str, Workload] = {}
        self.connections: dict[str, OperatorConnection] = {}
        # Per pool, the latest undelivered workload event per workload rtId (last wins).
        self.queued: dict[PoolKey, dict[str, tuple[str, list[Any]]]] = {}
        self.scale_reports: list[ScaleReport] = []
        self._outbox: list[Push] = []

    # --- plumbing -------------------------------------------------------------------------------

    def take_pushes(self) -> list[Push]:
        pushes, self._outbox = self._outbox, []
        return pushes

    def _broadcast(self, target: ClientMethod, arguments: list[Any]) -> None:
        """Pool and tenant events go to every connection that called RegisterOperatorAsync."""
        receivers = tuple(c.connection_id for c in self.connections.values() if c.registered_as_operator)
        if receivers:
            self._outbox.append(Push(receivers, target, arguments))

    def _owners(self, key: PoolKey) -> tuple[str, ...]:
        return tuple(c.connection_id for c in self.connections.values() if key in c.pools)

    def _route_workload_event(
        self, workload: Workload, target: ClientMethod, arguments: list[Any], queue_key: str | None = None
    ) -> None:
        """Workload events reach only the pool's registered connections; otherwise they wait per pool
        (last wins per key: the workload rtId, or ``<rtId>::scale`` for scales)."""
        owners = self._owners(workload.pool_key)
        if target == ClientMethod.WORKLOAD_DEPLOYED:
            workload.deploys.dispatched(Dispatch.SENT if owners else Dispatch.QUEUED)
        if owners:
            self._outbox.append(Push(owners, target, arguments))
            return
        key = queue_key or workload.workload_rt_id
        queue = self.queued.setdefault(workload.pool_key, {})
        queue.pop(key, None)  # re-insert so the latest event is also the last in order
        queue[key] = (target, arguments)

    def _connection(self, connection_id: str) -> OperatorConnection:
        return self.connections.setdefault(connection_id, OperatorConnection(connection_id))

    @staticmethod
    def _checked_rt_id(pool_rt_id: str) -> str:
        if not is_rt_id(pool_rt_id):
            raise HubError(
                f"'{pool_rt_id}' is not a valid pool runtime id (expected 24 hexadecimal characters)."
            )
        return pool_rt_id.lower()

    # --- connection lifecycle -------------------------------------------------------------------

    def connect(self, connection_id: str) -> None:
        self._connection(connection_id)

    def disconnect(self, connection_id: str) -> None:
        """The socket is gone: the connection's pools go Offline unless another connection claims them."""
        connection = self.connections.pop(connection_id, None)
        if connection is not None:
            self._release_pools(connection)

    def _release_pools(self, connection: OperatorConnection) -> None:
        released, connection.pools = connection.pools, set()
        for key in released:
            pool = self.pools.get(key[1])
            if pool is not None and pool.tenant_id == key[0] and not self._owners(key):
                pool.communication_state = CommunicationState.OFFLINE

    def restart(self) -> None:
        """A controller pod restart: in-memory tracking is lost, persisted pools and workloads stay.

        Pools keep their CommunicationState: a pod that is shutting down does not mark them Offline.
        """
        self.connections.clear()
        self.queued.clear()
        self._outbox.clear()

    # --- hub methods (IOperatorHub) -------------------------------------------------------------

    def invoke(self, connection_id: str, method: ServerMethod, arguments: list[Any]) -> Any:
        """Run one hub method with already-decoded arguments; returns the JSON-ready result."""
        match method:
            case ServerMethod.REGISTER_OPERATOR:
                return [dto.to_wire() for dto in self.register_operator(connection_id, arguments[0])]
            case ServerMethod.UNREGISTER_OPERATOR:
                self.unregister_operator(connection_id)
            case ServerMethod.REPORT_DEPLOYED_STATE:
                self.report_deployed_state(connection_id, arguments[0])
            case ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS:
                self.report_workload_status(arguments[0])
            case ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS:
                self.report_workload_progress(arguments[0])
            case ServerMethod.REGISTER_POOL:
                self.register_pool(connection_id, arguments[0], arguments[1])
            case ServerMethod.UNREGISTER_POOL:
                self.unregister_pool(connection_id, arguments[0], arguments[1])
            case ServerMethod.REPORT_WORKLOAD_SCALE_STATUS:
                self.scale_reports.append(ScaleReport(connection_id, arguments[0]))
        return None

    def register_operator(self, connection_id: str, auto_manage_pools: bool | None) -> list[DeployedPoolDto]:
        connection = self._connection(connection_id)
        connection.registered_as_operator = True
        connection.auto_manage_pools = auto_manage_pools
        return [
            DeployedPoolDto(tenant_id=p.tenant_id, pool_rt_id=p.pool_rt_id)
            for p in self.pools.values()
            if p.environment == PoolEnvironment.CLOUD and p.deployment_state == DeploymentState.DEPLOYED
        ]

    def unregister_operator(self, connection_id: str) -> None:
        connection = self._connection(connection_id)
        connection.registered_as_operator = False
        connection.auto_manage_pools = None
        self._release_pools(connection)

    def register_pool(self, connection_id: str, tenant_id: str, pool_rt_id: str) -> None:
        rt_id = self._checked_rt_id(pool_rt_id)
        connection = self._connection(connection_id)
        pool = self.pools.get(rt_id)
        if pool is not None and pool.tenant_id != tenant_id:
            pool = None
        mode = connection.auto_manage_pools
        if mode is not None:
            if pool is None:
                raise HubError(f"Pool {rt_id} does not exist in tenant '{tenant_id}'.")
            expected = PoolEnvironment.CLOUD if mode else PoolEnvironment.EDGE
            if pool.environment != expected:
                raise HubError(
                    f"Pool {rt_id} has environment {pool.environment.name.title()}, which does not match "
                    f"this operator's mode ({_mode_name(mode)})."
                )
        key = (tenant_id, rt_id)
        connection.pools.add(key)
        if pool is not None:
            pool.communication_state = CommunicationState.ONLINE
        delivered = self._flush_queue(connection_id, key)
        for workload in self.workloads.values():
            if (
                workload.pool_key == key
                and workload.deployment_state == DeploymentState.PENDING
                and workload.workload_rt_id not in delivered
            ):
                dto = workload.deployed_dto(is_reconciliation=True)
                workload.deploys.dispatched(Dispatch.RECONCILIATION)
                self._outbox.append(Push((connection_id,), ClientMethod.WORKLOAD_DEPLOYED, [dto.to_wire()]))

    def _flush_queue(self, connection_id: str, key: PoolKey) -> set[str]:
        """Send the pool's queued workload events to the registering connection; returns their rtIds."""
        queue = self.queued.pop(key, {})
        for workload_rt_id, (target, arguments) in queue.items():
            workload = self.workloads.get(workload_rt_id)
            if workload is not None and target == ClientMethod.WORKLOAD_DEPLOYED:
                workload.deploys.dispatched(Dispatch.FLUSHED)
            self._outbox.append(Push((connection_id,), target, arguments))
        return set(queue)

    def unregister_pool(self, connection_id: str, tenant_id: str, pool_rt_id: str) -> None:
        rt_id = self._checked_rt_id(pool_rt_id)
        key = (tenant_id, rt_id)
        self._connection(connection_id).pools.discard(key)
        pool = self.pools.get(rt_id)
        if pool is None or pool.tenant_id != tenant_id:
            return
        pool.communication_state = CommunicationState.UNREGISTERED
        if pool.environment == PoolEnvironment.CLOUD and pool.deployment_state == DeploymentState.DEPLOYED:
            pool.deployment_state = DeploymentState.PENDING  # deployed, but no operator runs it now
        elif pool.environment == PoolEnvironment.EDGE and pool.deployment_state in _ACTIVE_STATES:
            pool.deployment_state = DeploymentState.DISABLED

    def report_deployed_state(self, connection_id: str, reports: list[OperatorDeployedPoolReportDto]) -> None:
        connection = self._connection(connection_id)
        if connection.auto_manage_pools is not True:
            raise HubError(
                "ReportDeployedStateAsync is only accepted from operators that manage pools "
                f"(RegisterOperatorAsync(true)); this connection is in "
                f"{_mode_name(connection.auto_manage_pools)} mode."
            )
        for report in reports:
            pool = self.pools.get(report.pool_rt_id.lower())
            if (
                pool is None
                or pool.tenant_id != report.tenant_id
                or pool.environment != PoolEnvironment.CLOUD
            ):
                continue
            if pool.deployment_state != DeploymentState.DEPLOYED:
                pool.deployment_state = DeploymentState.DEPLOYED
            connection.pools.add(pool.key)
            pool.communication_state = CommunicationState.ONLINE
            for workload_rt_id in report.workload_rt_ids:
                workload = self.workloads.get(workload_rt_id.lower())
                if workload is not None and workload.pool_key == pool.key:
                    workload.deployment_state = DeploymentState.DEPLOYED

    def _reported_workload(self, tenant_id: str, workload_rt_id: str) -> Workload | None:
        if not tenant_id or not workload_rt_id:
            return None  # the controller ignores reports without identity
        workload = self.workloads.get(workload_rt_id.lower())
        if workload is None or workload.tenant_id != tenant_id:
            return None  # the controller swallows lookup failures
        return workload

    def report_workload_status(self, status: WorkloadDeploymentStatusDto) -> None:
        workload = self._reported_workload(status.tenant_id, status.workload_rt_id)
        if workload is None:
            return
        workload.deployment_state = DeploymentState.DEPLOYED if status.success else DeploymentState.ERROR
        workload.status_message = status.status_message
        workload.deploys.status(status.success, status.status_message)

    def report_workload_progress(self, progress: WorkloadDeploymentProgressDto) -> None:
        workload = self._reported_workload(progress.tenant_id, progress.workload_rt_id)
        if workload is None:
            return
        workload.deployment_state = DeploymentState.PENDING
        workload.status_message = progress.message
        workload.progress.append(progress.message)
        workload.deploys.progress(progress.message)

    # --- admin (what a user does in the controller's UI) ----------------------------------------

    def create_pool(
        self, tenant_id: str, name: str, environment: PoolEnvironment, pool_rt_id: str | None = None
    ) -> Pool:
        if not tenant_id:
            raise AdminError(400, "tenantId must not be empty.")
        if pool_rt_id is None:
            pool_rt_id = new_rt_id()
        elif not is_rt_id(pool_rt_id):
            raise AdminError(400, f"poolRtId '{pool_rt_id}' is not 24 hexadecimal characters.")
        pool_rt_id = pool_rt_id.lower()
        if pool_rt_id in self.pools:
            raise AdminError(409, f"Pool {pool_rt_id} already exists.")
        pool = Pool(tenant_id=tenant_id, pool_rt_id=pool_rt_id, name=name, environment=environment)
        self.pools[pool_rt_id] = pool
        return pool

    def pool(self, pool_rt_id: str) -> Pool:
        pool = self.pools.get(pool_rt_id.lower())
        if pool is None:
            raise AdminError(404, f"Pool {pool_rt_id} does not exist.")
        return pool

    def deploy_pool(self, pool_rt_id: str) -> None:
        pool = self.pool(pool_rt_id)
        if pool.environment == PoolEnvironment.EDGE:
            raise AdminError(
                409,
                f"Pool {pool.pool_rt_id} is an Edge pool; edge pools are run by an edge operator and "
                "cannot be deployed (EdgePoolNotDeployable).",
            )
        dto = DeployedPoolDto(tenant_id=pool.tenant_id, pool_rt_id=pool.pool_rt_id)
        self._broadcast(ClientMethod.POOL_DEPLOYED, [dto.to_wire()])
        pool.deployment_state = DeploymentState.DEPLOYED

    def undeploy_pool(self, pool_rt_id: str) -> None:
        pool = self.pool(pool_rt_id)
        if pool.deployment_state not in _ACTIVE_STATES:
            raise AdminError(
                409, f"Pool {pool.pool_rt_id} is not deployed ({pool.deployment_state.name.title()})."
            )
        for workload in self.workloads.values():
            if workload.pool_key == pool.key and workload.deployment_state in _ACTIVE_STATES:
                self._undeploy(workload)
        self._broadcast(ClientMethod.POOL_UNDEPLOYED, [pool.tenant_id, pool.pool_rt_id])
        pool.deployment_state = (
            DeploymentState.UNDEPLOYED
            if pool.environment == PoolEnvironment.CLOUD
            else DeploymentState.DISABLED
        )

    def add_workload(self, workload: Workload) -> Workload:
        pool = self.pool(workload.pool_rt_id)
        if pool.tenant_id != workload.tenant_id:
            raise AdminError(
                400,
                f"Pool {pool.pool_rt_id} belongs to tenant '{pool.tenant_id}', not '{workload.tenant_id}'.",
            )
        for name, value in (("repositoryUrl", workload.repository_url), ("chartName", workload.chart_name)):
            if not value:
                raise AdminError(400, f"{name} must not be empty.")
        if workload.ingress_enabled and not workload.hostname:
            raise AdminError(400, "ingressEnabled requires a hostname.")
        if not is_rt_id(workload.workload_rt_id):
            raise AdminError(
                400, f"workloadRtId '{workload.workload_rt_id}' is not 24 hexadecimal characters."
            )
        workload.workload_rt_id = workload.workload_rt_id.lower()
        workload.pool_rt_id = pool.pool_rt_id
        if workload.workload_rt_id in self.workloads:
            raise AdminError(409, f"Workload {workload.workload_rt_id} already exists.")
        self.workloads[workload.workload_rt_id] = workload
        return workload

    def update_workload(self, workload_rt_id: str, changes: dict[str, Any]) -> Workload:
        """Change a workload's definition (attribute name → value); deploys already sent are unchanged."""
        workload = self.workload(workload_rt_id)
        for name in ("repository_url", "chart_name"):
            if name in changes and not changes[name]:
                raise AdminError(400, f"{name} must not be empty.")
        ingress = changes.get("ingress_enabled", workload.ingress_enabled)
        if ingress and not changes.get("hostname", workload.hostname):
            raise AdminError(400, "ingressEnabled requires a hostname.")
        for name, value in changes.items():
            setattr(workload, name, value)
        return workload

    def workload(self, workload_rt_id: str) -> Workload:
        workload = self.workloads.get(workload_rt_id.lower())
        if workload is None:
            raise AdminError(404, f"Workload {workload_rt_id} does not exist.")
        return workload

    def deploy_workload(self, workload_rt_id: str) -> None:
        workload = self.workload(workload_rt_id)
        workload.deployment_state = DeploymentState.PENDING
        workload.status_message = None
        workload.progress = []
        workload.deploys.start()
        dto = workload.deployed_dto(is_reconciliation=False)
        self._route_workload_event(workload, ClientMethod.WORKLOAD_DEPLOYED, [dto.to_wire()])

    def undeploy_workload(self, workload_rt_id: str) -> None:
        workload = self.workload(workload_rt_id)
        if workload.deployment_state not in _ACTIVE_STATES:
            raise AdminError(
                409,
                f"Workload {workload.workload_rt_id} is already not deployed (WorkloadAlreadyNotDeployed).",
            )
        self._undeploy(workload)

    def _undeploy(self, workload: Workload) -> None:
        workload.deployment_state = DeploymentState.UNDEPLOYED  # no operator acknowledgement exists
        workload.status_message = None
        self._route_workload_event(
            workload, ClientMethod.WORKLOAD_UNDEPLOYED, [workload.undeployed_dto().to_wire()]
        )

    def scale_workload(self, workload_rt_id: str, replicas: int) -> None:
        """``ScaleWorkloadAsync`` (0 hibernates, 1 wakes); the ack lands in ``scale_reports``."""
        workload = self.workload(workload_rt_id)
        dto = ScaleWorkloadDto(
            tenant_id=workload.tenant_id,
            pool_rt_id=workload.pool_rt_id,
            workload_rt_id=workload.workload_rt_id,
            workload_name=workload.name,
            workload_type=workload.workload_type,
            replicas=replicas,
        )
        self._route_workload_event(
            workload, ClientMethod.SCALE_WORKLOAD, [dto.to_wire()], f"{workload.workload_rt_id}::scale"
        )

    def pre_update_tenant(self, tenant_id: str) -> None:
        self._broadcast(ClientMethod.PRE_UPDATE_TENANT, [tenant_id])

    def push_raw(self, target: str, arguments: list[Any]) -> None:
        """Anything at all, to every open connection (for malformed-message tests)."""
        receivers = tuple(self.connections)
        if receivers:
            self._outbox.append(Push(receivers, target, arguments))
