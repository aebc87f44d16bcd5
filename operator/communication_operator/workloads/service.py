"""The workloads front: the controller's workload pushes (octo-spec §4, issue 5) turned into actions.

:class:`WorkloadService` holds the hub handlers only. Each validates the push's ids, and schedules the
work as an action of the release on :class:`~.scheduler.ReleaseScheduler` (one action per release at
a time, newest wins, a bounded number running helm), then returns at once (the hub dispatches pushes
one at a time). The work itself is :class:`~.deploy.DeployPipeline` (the named steps of
:mod:`.steps`), :func:`~.undeploy.undeploy`, or a scale (:mod:`.scale`, through :meth:`schedule_scale`).

* A re-dispatch identical to a finished deploy whose final status is still queued is answered by
  that status (:mod:`.delivery`); one identical to the deploy in progress does not restart it.
* A cancelled deploy reports nothing: a superseded deploy is followed by its successor's status, an
  undeploy has set the workload Undeployed in the controller already, and at shutdown the workload
  stays Pending, which the controller re-dispatches when the pool registers again. A failure status
  here would overwrite the successor's truth with a stale ``Error``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from communication_operator.contracts import WorkloadDeployedDto, WorkloadUndeployedDto
from communication_operator.hub.ports import Delivery, ReportPort
from communication_operator.logs import log_context
from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.context import workload_context
from communication_operator.workloads.delivery import UndeliveredStatuses, refusal_content, same_deploy
from communication_operator.workloads.deploy import DeployPipeline, DeployTools
from communication_operator.workloads.errors import InvalidWorkload
from communication_operator.workloads.naming import NamingError, release_name
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.refresh import RepositoryRefresher
from communication_operator.workloads.replicas import ReplicaReader
from communication_operator.workloads.rollout import RolloutReader
from communication_operator.workloads.scheduler import ReleaseScheduler
from communication_operator.workloads.secrets import SecretStore
from communication_operator.workloads.steps.report import Reporter
from communication_operator.workloads.steps.validate import deploy_secrets
from communication_operator.workloads.undeploy import undeploy
from communication_operator.workloads.values import OperatorContext as ValuesContext
from communication_operator.workloads.watcher import WatcherFactory

log = logging.getLogger(__name__)

ALREADY_ANSWERED_LOG: Final = (
    "workload %s: identical deploy already finished; its queued status answers this push"
)
ALREADY_RUNNING_LOG: Final = "release %s: identical deploy already in progress; not restarting it"
SHUTTING_DOWN_LOG: Final = "ignoring %s of workload %s: the operator is shutting down"
REFUSING_LOG: Final = "refusing %s of workload %r: %s"


class WorkloadService:
    """Handles ``WorkloadDeployedAsync`` and ``WorkloadUndeployedAsync`` (and refused deploy pushes)."""

    def __init__(
        self,
        hub: ReportPort,
        helm: HelmPort,
        secrets: SecretStore,
        watcher_factory: WatcherFactory,
        values_context: ValuesContext,
        options: WorkloadOptions | None = None,
        *,
        metrics: OperatorMetrics | None = None,
        replicas: ReplicaReader | None = None,
        rollouts: RolloutReader | None = None,
    ) -> None:
        self.options = options or WorkloadOptions(namespace=values_context.pool_namespace)
        # Always recorded: without an exporter the counters are still what tests and benchmarks read.
        self.metrics = metrics or OperatorMetrics()
        self.scheduler = ReleaseScheduler(self.options.max_concurrent, self.metrics.set_helm_slots_in_use)
        self._values = values_context
        self._undelivered = UndeliveredStatuses()
        self._helm = helm
        self._secrets = secrets
        self._repositories = RepositoryRefresher(helm, self.scheduler.slot)
        self._reporter = Reporter(hub, self.options.status_limit, self._undelivered)
        self._pipeline = DeployPipeline(
            DeployTools(
                helm=helm,
                secrets=secrets,
                watchers=watcher_factory,
                values=values_context,
                options=self.options,
                metrics=self.metrics,
                reporter=self._reporter,
                repositories=self._repositories,
                slot=self.scheduler.slot,
                cancel_reason=self.scheduler.cancel_reason,
                replicas=replicas,
                rollouts=rollouts,
            )
        )

    async def on_workload_deployed(self, dto: WorkloadDeployedDto) -> None:
        """Schedule the deploy and return; the outcome is reported by the deploy action."""
        # Known before anything is logged or reported about this push (a refusal of its ids included).
        secrets = deploy_secrets(dto, self._values)
        release = self._release_to_act_on(dto, "deploy")
        if release is not None and self._undelivered.answers_deploy(dto):
            # A re-dispatch of a deploy that finished while the controller was away: its final status
            # is queued and answers this push (a second helm run would send a second final status).
            named = release if isinstance(release, str) else None
            log.info(ALREADY_ANSWERED_LOG, dto.workload_rt_id, extra=workload_context(dto, named))
            return
        if isinstance(release, NamingError):
            await self._reporter.status(dto, False, str(InvalidWorkload(release)), secrets)
            return
        if release is None:
            return
        previous = self.scheduler.current(release)
        if (
            previous is not None
            and previous.kind == "deploy"
            and previous.running
            and isinstance(previous.payload, WorkloadDeployedDto)
            and same_deploy(previous.payload, dto)
        ):
            # The controller re-dispatches Pending workloads when a pool registers again (after a
            # reconnect); restarting an identical helm run would only delay the status it waits for.
            log.info(ALREADY_RUNNING_LOG, release, extra=workload_context(dto, release))
            return
        self._undelivered.forget(dto.tenant_id, dto.workload_rt_id)
        self.scheduler.schedule(
            release,
            "deploy",
            lambda: self._pipeline.run(dto, release),
            context=workload_context(dto, release),
            payload=dto,
        )

    async def on_workload_undeployed(self, dto: WorkloadUndeployedDto) -> None:
        """Cancel any deploy of the release, then schedule ``helm uninstall`` and the Secret's deletion."""
        release = self._release_to_act_on(dto, "undeploy")
        if not isinstance(release, str):
            return  # shutting down, or ids that name no release (logged); the contract has no undeploy ack
        self._undelivered.forget(dto.tenant_id, dto.workload_rt_id)

        async def work() -> None:
            await undeploy(
                self._helm, self._secrets, self.options, self.metrics, self.scheduler.slot, dto, release
            )

        self.scheduler.schedule(release, "undeploy", work, context=workload_context(dto, release))

    async def on_deploy_refused(
        self, ids: tuple[str, str], problems: tuple[str, ...], send: Callable[[], Awaitable[Delivery]]
    ) -> None:
        """Report a refused push's failed status through the same machinery as a deploy's (finding 8):
        an earlier deploy of the workload is stopped first (it reports nothing after this), and a
        re-dispatch of the same refused push is answered by the status still queued."""
        content = refusal_content(problems)
        if self.scheduler.closing or self._undelivered.answers(ids, content, redispatch=False):
            return  # shutting down (the workload stays Pending), or answered by the queued refusal
        self._undelivered.forget(*ids)

        async def report() -> None:
            self._undelivered.remember(ids, content, await send())

        try:
            release = release_name(*ids)
        except NamingError:
            await report()  # ids that name no release: no deploy of this workload can be running
            return
        context = log_context(tenant=ids[0], workload=ids[1])
        self.scheduler.schedule(release, "deploy", report, context=context)

    def _release_to_act_on(
        self, dto: WorkloadDeployedDto | WorkloadUndeployedDto, action: str
    ) -> str | NamingError | None:
        """The release a push acts on; ``None`` while shutting down, the error for ids that name none."""
        if self.scheduler.closing:
            log.warning(SHUTTING_DOWN_LOG, action, dto.workload_rt_id, extra=workload_context(dto))
            return None
        try:
            return release_name(dto.tenant_id, dto.workload_rt_id)
        except NamingError as exc:
            log.error(REFUSING_LOG, action, dto.workload_rt_id, exc, extra=workload_context(dto))
            return exc

    async def connection_opened(self) -> None:
        """A (re)connect: statuses delivered on the previous connection answer no re-dispatch now."""
        self._undelivered.connection_opened()

    async def shutdown(self) -> None:
        """Cancel every action (SIGTERM to helm) and wait until all have stopped; later pushes are ignored."""
        await self.scheduler.shutdown()

    async def wait_idle(self) -> None:
        """Wait until no action is scheduled (tests and benchmarks)."""
        await self.scheduler.wait_idle()

    def busy_releases(self) -> list[str]:
        return self.scheduler.busy_releases()

    def schedule_scale(
        self, release: str, work: Callable[[], Awaitable[None]], context: dict[str, str]
    ) -> bool:
        """Queue a scale behind every action of ``release`` (:mod:`.scale`); False while shutting down."""
        return self.scheduler.schedule(release, "scale", work, context=context)

    def namespace_for(self, workload_type: int) -> str:
        """The namespace a workload's release lives in: adapter pools go to the platform namespace."""
        return self.options.namespace_for(workload_type)
