"""Workload deploy and undeploy, from the controller's pushes to helm and back (octo-spec §4, issue 5).

:class:`WorkloadService` is a plain async class. Its two hub handlers validate and schedule, then
return at once (the hub dispatches pushes one at a time); the helm work runs as one task per push.

Rules the scheduling keeps:

* One helm process per release at a time. A newer deploy of the same workload cancels the older one
  and starts after it has stopped; an undeploy cancels an in-flight deploy the same way. Cancelling
  sends SIGTERM to helm's process group (helm then marks the release failed instead of leaving it
  locked; with rollback-on-failure it rolls back), SIGKILL after the grace period. An undeploy itself
  is never cancelled (a killed ``helm uninstall`` leaves the release ``uninstalling``): what comes
  after it waits.
* A re-dispatch identical to a finished deploy whose final status is still queued is answered by
  that status (:mod:`.delivery`).
* At most ``max_concurrent`` deploys and undeploys run helm at once (``OPERATOR__HELM__MAXCONCURRENT``).
* A cancelled deploy reports nothing: a superseded deploy is followed by its successor's status, an
  undeploy has set the workload Undeployed in the controller already, and at shutdown the workload
  stays Pending, which the controller re-dispatches when the pool registers again. A failure status
  here would overwrite the successor's truth with a stale ``Error``.

Deploy: validate (names, repository, chart version, values) → repository (``helm repo add`` +
``repo update``, or ``helm registry login`` for ``oci://`` with credentials) → values files in a
private temporary directory (removed afterwards) → recovery of a release stuck in ``pending-*``
(reported as progress) → chart version for reconciliations → server-side dry run → the per-release
Secret → ``helm upgrade --install --wait`` while :class:`~.watcher.ReleaseWatcher` reports live signals
and may stop helm early (fail-fast) → the final status, always after the deploy's last progress
report. Every text sent is redacted of the deploy's secrets and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from communication_operator.contracts import (
    ServerMethod,
    WorkloadDeployedDto,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
    WorkloadType,
    WorkloadUndeployedDto,
)
from communication_operator.hub.ports import ReportPort
from communication_operator.logs import log_context
from communication_operator.metrics import HelmOutcome
from communication_operator.redaction import redact, remember_secrets, truncate_middle, url_passwords
from communication_operator.workloads.delivery import (
    UndeliveredStatuses,
    deploy_content,
    refusal_content,
    same_deploy,
    workload_key,
)
from communication_operator.workloads.diagnostics import fail_fast_head, with_diagnostics
from communication_operator.workloads.helm import HelmCancelled, HelmCli, HelmError
from communication_operator.workloads.naming import (
    NamingError,
    release_labels,
    release_name,
    release_secret_name,
)
from communication_operator.workloads.recovery import (
    RecoveryError,
    recover_pending_release,
    uninstall_to_completion,
)
from communication_operator.workloads.refresh import RepositoryRefresher
from communication_operator.workloads.replicas import (
    REPLICA_COUNT_KEY,
    ReplicaReader,
    explain_field_conflict,
    replica_pin,
)
from communication_operator.workloads.repository import (
    ChartSource,
    RepositoryError,
    chart_source,
    validate_chart_version,
)
from communication_operator.workloads.secrets import (
    SecretError,
    SecretSnapshot,
    SecretStore,
    restore_after_failure,
)
from communication_operator.workloads.settings_adapters import (
    fail_fast_policy_from_settings,
    values_context_from_settings,
)
from communication_operator.workloads.signals.policy import FailFastPolicy
from communication_operator.workloads.signals.text import describe
from communication_operator.workloads.values import (
    OperatorContext as ValuesContext,
)
from communication_operator.workloads.values import (
    RenderedValues,
    ValuesError,
    render_values,
    secret_values,
)
from communication_operator.workloads.valuesdirs import remove_orphaned_values_dirs, values_files
from communication_operator.workloads.watcher import ProgressSink, WatcherFactory

if TYPE_CHECKING:
    from communication_operator.metrics import OperatorMetrics
    from communication_operator.settings import Settings
    from communication_operator.workloads.scale import ScaleHandler

log = logging.getLogger(__name__)

STATUS_LIMIT = 4000


Delivery = asyncio.Future[bool] | None


@dataclass(frozen=True)
class WorkloadOptions:
    """How deploys run; :meth:`from_settings` reads the ``OPERATOR__HELM__*`` settings."""

    namespace: str = "octo"
    platform_namespace: str = ""  # adapter pools (workloadType 2); empty = ``namespace``
    timeout_seconds: float = 300.0
    history_max: int = 5
    max_concurrent: int = 4
    force_conflicts: bool = False  # helm 4 --force-conflicts on the real upgrade
    fail_fast: FailFastPolicy = field(default_factory=FailFastPolicy)
    dry_run: bool = True
    status_limit: int = STATUS_LIMIT

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkloadOptions:
        return cls(
            namespace=settings.pool_namespace,
            platform_namespace=settings.platform_namespace,
            timeout_seconds=settings.helm.timeout_seconds,
            history_max=settings.helm.history_max,
            max_concurrent=settings.helm.max_concurrent,
            force_conflicts=settings.helm.force_conflicts,
            fail_fast=fail_fast_policy_from_settings(settings),
        )


class DeployFailed(Exception):
    """A deploy failed; the message is what the controller will see (before redaction and bounding)."""


@dataclass(eq=False)
class _Run:
    """The latest scheduled helm work for one release."""

    kind: str  # "deploy", "undeploy" or "scale" (workloads/scale.py)
    workload_rt_id: str
    task: asyncio.Task[None]
    dto: WorkloadDeployedDto | None = None
    cancel_reason: str | None = None
    context: dict[str, str] = field(default_factory=dict)  # log context (tenant, pool, workload, release)
    predecessors: tuple[asyncio.Task[None], ...] = ()  # earlier runs of the release this one waits for
    behind: _Run | None = None  # the run a scale was queued behind (a newer deploy cancels that one)

    def cancel_once(self, reason: str) -> None:
        # Cancelling twice could interrupt helm's SIGTERM grace period and leave it running unobserved.
        if self.cancel_reason is None and not self.task.done():
            self.cancel_reason = reason
            self.task.cancel()


@dataclass
class DeployStats:
    """Counters for tests, benchmarks and logs."""

    deploys_started: int = 0
    deploys_succeeded: int = 0
    deploys_failed: int = 0
    deploys_cancelled: int = 0
    failed_fast: int = 0
    recoveries: int = 0
    undeploys: int = 0
    running: int = 0
    peak_running: int = 0


class WorkloadService:
    """Handles ``WorkloadDeployedAsync`` and ``WorkloadUndeployedAsync``."""

    def __init__(
        self,
        hub: ReportPort,
        helm: HelmCli,
        secrets: SecretStore,
        watcher_factory: WatcherFactory,
        values_context: ValuesContext,
        options: WorkloadOptions | None = None,
        *,
        metrics: OperatorMetrics | None = None,
        replicas: ReplicaReader | None = None,
    ) -> None:
        self._hub = hub
        self._helm = helm
        self._secrets = secrets
        self._watcher_factory = watcher_factory
        self._values = values_context
        self.options = options or WorkloadOptions(namespace=values_context.pool_namespace)
        self._metrics = metrics
        self._replicas = replicas
        self._slots = asyncio.Semaphore(self.options.max_concurrent)
        self._runs: dict[str, _Run] = {}
        self._closing = False
        self._repositories = RepositoryRefresher(helm, self._slot)
        self._undelivered = UndeliveredStatuses()
        self.stats = DeployStats()

    # -- hub handlers ---------------------------------------------------------------------------------

    async def on_workload_deployed(self, dto: WorkloadDeployedDto) -> None:
        """Schedule the deploy and return; the outcome is reported by the deploy task."""
        # Known before anything is logged or reported about this push (a refusal of its ids included).
        secrets = secret_values(dto, self._values) | url_passwords(dto.repository_url)
        remember_secrets(secrets)
        release = self._release_to_act_on(dto, "deploy")
        if release is not None and self._undelivered.answers_deploy(dto):
            # A re-dispatch of a deploy that finished while the controller was away: its final status
            # is queued and answers this push (a second helm run would send a second final status).
            log.info(
                "workload %s: identical deploy already finished; its queued status answers this push",
                dto.workload_rt_id,
                extra=workload_context(dto, release if isinstance(release, str) else None),
            )
            return
        if isinstance(release, NamingError):
            await self._report_status(dto, False, f"Invalid workload: {release}", secrets)
            return
        if release is None:
            return
        previous = self._runs.get(release)
        if (
            previous is not None
            and previous.kind == "deploy"
            and previous.cancel_reason is None
            and not previous.task.done()
            and same_deploy(previous.dto, dto)
        ):
            # The controller re-dispatches Pending workloads when a pool registers again (after a
            # reconnect); restarting an identical helm run would only delay the status it waits for.
            log.info(
                "release %s: identical deploy already in progress; not restarting it",
                release,
                extra=workload_context(dto, release),
            )
            return
        self._undelivered.forget(dto.tenant_id, dto.workload_rt_id)
        self._schedule(
            release,
            "deploy",
            dto.workload_rt_id,
            lambda: self._deploy(dto, release),
            workload_context(dto, release),
            dto,
        )

    async def on_workload_undeployed(self, dto: WorkloadUndeployedDto) -> None:
        """Cancel any deploy of the release, then schedule ``helm uninstall`` and the Secret's deletion."""
        release = self._release_to_act_on(dto, "undeploy")
        if not isinstance(release, str):
            return  # shutting down, or ids that name no release (logged); the contract has no undeploy ack
        self._undelivered.forget(dto.tenant_id, dto.workload_rt_id)
        self._schedule(
            release,
            "undeploy",
            dto.workload_rt_id,
            lambda: self._undeploy(dto, release),
            workload_context(dto, release),
        )

    async def on_deploy_refused(
        self, ids: tuple[str, str], problems: tuple[str, ...], send: Callable[[], Awaitable[Delivery]]
    ) -> None:
        """Report a refused push's failed status through the same machinery as a deploy's (finding 8):
        an earlier deploy of the workload is stopped first (it reports nothing after this), and a
        re-dispatch of the same refused push is answered by the status still queued."""
        content = refusal_content(problems)
        if self._closing or self._undelivered.answers(ids, content, redispatch=False):
            return  # shutting down (the workload stays Pending), or answered by the queued refusal
        self._undelivered.forget(*ids)

        async def report() -> None:
            self._undelivered.remember(ids, content, await send())

        try:
            release = release_name(*ids)
        except NamingError:
            await report()  # ids that name no release: no deploy of this workload can be running
            return
        self._schedule(release, "deploy", ids[1], report, log_context(tenant=ids[0], workload=ids[1]))

    def _release_to_act_on(
        self, dto: WorkloadDeployedDto | WorkloadUndeployedDto, action: str
    ) -> str | NamingError | None:
        """The release a push acts on; ``None`` while shutting down, the error for ids that name none."""
        if self._closing:
            log.warning(
                "ignoring %s of workload %s: the operator is shutting down",
                action,
                dto.workload_rt_id,
                extra=workload_context(dto),
            )
            return None
        try:
            return release_name(dto.tenant_id, dto.workload_rt_id)
        except NamingError as exc:
            log.error(
                "refusing %s of workload %r: %s", action, dto.workload_rt_id, exc, extra=workload_context(dto)
            )
            return exc

    async def connection_opened(self) -> None:
        """A (re)connect: statuses delivered on the previous connection answer no re-dispatch now."""
        self._undelivered.connection_opened()

    async def shutdown(self) -> None:
        """Cancel every run (SIGTERM to helm) and wait until all have stopped; later pushes are ignored."""
        self._closing = True
        runs = list(self._runs.values())
        for run in runs:
            run.cancel_once("shutdown")
        if runs:
            log.info("stopping %d workload run(s)", len(runs))
            await asyncio.gather(*(run.task for run in runs), return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait until no run is scheduled (tests and benchmarks)."""
        while self._runs:
            await asyncio.gather(*(run.task for run in list(self._runs.values())), return_exceptions=True)

    def busy_releases(self) -> list[str]:
        return sorted(self._runs)

    def schedule_scale(
        self, release: str, workload_rt_id: str, work: Callable[[], Awaitable[None]], context: dict[str, str]
    ) -> bool:
        """Queue a scale behind every run of ``release`` (workloads/scale.py); False while shutting down."""
        if self._closing:
            return False
        self._schedule(release, "scale", workload_rt_id, work, context)
        return True

    def namespace_for(self, workload_type: int) -> str:
        """The namespace a workload's release lives in: adapter pools go to the platform namespace."""
        if workload_type == WorkloadType.ADAPTER_POOL and self.options.platform_namespace:
            return self.options.platform_namespace
        return self.options.namespace

    # -- scheduling -----------------------------------------------------------------------------------

    def _schedule(
        self,
        release: str,
        kind: str,
        workload_rt_id: str,
        work: Callable[[], Awaitable[None]],
        context: dict[str, str],
        dto: WorkloadDeployedDto | None = None,
    ) -> None:
        previous = self._runs.get(release)
        # A scale cancels nothing and is never cancelled by a newer run: its ack is awaited.
        superseded = _last_helm_run(previous) if kind != "scale" else None
        if superseded is not None and superseded.kind == "undeploy":
            # Never cancelled: a killed `helm uninstall` leaves the release `uninstalling`, which no
            # later deploy can install over. The newer run waits for it (as a predecessor, below).
            if not superseded.task.done():
                log.info("release %s: %s waits for the running undeploy", release, kind, extra=context)
        elif superseded is not None:
            reason = "superseded by a newer deploy" if kind == "deploy" else "cancelled by an undeploy"
            if not superseded.task.done():
                log.info(
                    "release %s: %s %s; stopping it",
                    release,
                    superseded.kind,
                    reason,
                    extra=superseded.context,
                )
            superseded.cancel_once(reason)

        # Every earlier run still going, not just the latest: a queued run cancelled before its
        # predecessor's helm has stopped ends at once, and its successor must still wait for that helm.
        predecessors: tuple[asyncio.Task[None], ...] = ()
        if previous is not None:
            predecessors = tuple(t for t in (*previous.predecessors, previous.task) if not t.done())

        async def after_previous() -> None:
            for earlier in predecessors:
                await _settle(earlier)  # their own errors are their own; only the order matters
            await work()

        task = asyncio.create_task(after_previous(), name=f"{kind}-{release}")
        run = _Run(kind, workload_rt_id, task, dto, context=context, predecessors=predecessors)
        if kind == "scale" and previous is not None and not previous.task.done():
            run.behind = previous
        self._runs[release] = run

        def forget(_: asyncio.Task[None]) -> None:
            if self._runs.get(release) is run:
                del self._runs[release]
            run.behind = None
            if not task.cancelled() and task.exception() is not None:
                log.error("%s of release %s crashed", kind, release, exc_info=task.exception(), extra=context)

        task.add_done_callback(forget)

    @contextlib.asynccontextmanager
    async def _slot(self) -> Any:
        async with self._slots:
            self.stats.running += 1
            self.stats.peak_running = max(self.stats.peak_running, self.stats.running)
            try:
                yield
            finally:
                self.stats.running -= 1

    # -- deploy ---------------------------------------------------------------------------------------

    async def _deploy(self, dto: WorkloadDeployedDto, release: str) -> None:
        self.stats.deploys_started += 1
        # A password in the URL counts as a secret even when the URL does not parse; every log line
        # (a library's too) is redacted of what the process knows.
        secrets = secret_values(dto, self._values) | url_passwords(dto.repository_url)
        remember_secrets(secrets)
        context = workload_context(dto, release)
        started = time.monotonic()
        try:
            source = chart_source(dto.repository_url, dto.chart_name)
            if source.url_password:
                secrets = secrets | {source.url_password}
            version = validate_chart_version(dto.chart_version)
            rendered = render_values(dto, self._values)
        except (RepositoryError, ValuesError, NamingError) as exc:
            self.stats.deploys_failed += 1
            await self._report_status(dto, False, f"Invalid workload: {exc}", secrets, release)
            return
        log.info(
            "deploying workload %s (%s) as release %s in %s: chart %s %s",
            dto.workload_rt_id,
            dto.workload_name,
            release,
            self.namespace_for(dto.workload_type),
            redact(source.chart_ref),
            version or "(newest)",
            extra=context,
        )
        try:
            await self._prepare_repository(source, dto)  # takes a slot only while helm runs
            async with self._slot():
                message = await self._deploy_release(dto, release, source, version, rendered, secrets)
        except asyncio.CancelledError:
            self.stats.deploys_cancelled += 1
            reason = self._cancel_reason(release)
            log.info(
                "deploy of release %s cancelled (%s); no status reported", release, reason, extra=context
            )
            raise
        except DeployFailed as exc:
            self.stats.deploys_failed += 1
            await self._report_status(dto, False, str(exc), secrets, release)
        except (HelmError, RecoveryError, SecretError) as exc:
            self.stats.deploys_failed += 1
            await self._report_status(dto, False, str(exc), secrets, release)
        except Exception as exc:
            self.stats.deploys_failed += 1
            log.exception("deploy of release %s failed unexpectedly", release, extra=context)
            await self._report_status(
                dto, False, f"Deploy failed in the operator: {type(exc).__name__}: {exc}", secrets, release
            )
        else:
            self.stats.deploys_succeeded += 1
            log.info(
                "release %s deployed in %.1f s: %s",
                release,
                time.monotonic() - started,
                redact(message, secrets),
                extra=context,
            )
            await self._report_status(dto, True, message, secrets, release)

    def _cancel_reason(self, release: str) -> str:
        """Why the running task of ``release`` was cancelled (by now it may have a successor)."""
        run = self._runs.get(release)
        if run is None:
            return "cancelled"
        if run.task is asyncio.current_task():
            return run.cancel_reason or "cancelled"
        return "superseded by a newer deploy" if run.kind == "deploy" else "cancelled by an undeploy"

    async def _deploy_release(
        self,
        dto: WorkloadDeployedDto,
        release: str,
        source: ChartSource,
        version: str | None,
        rendered: RenderedValues,
        secrets: frozenset[str],
    ) -> str:
        namespace = self.namespace_for(dto.workload_type)
        with values_files(rendered) as files:
            recovery = await recover_pending_release(
                self._helm, release, namespace, timeout_seconds=self.options.timeout_seconds
            )
            if recovery is not None:
                self.stats.recoveries += 1
                log.warning(
                    "release %s: %s",
                    release,
                    redact(recovery.message, secrets),
                    extra=workload_context(dto, release),
                )
                await self._report_progress(dto, recovery.message, secrets)
            version = await self._resolve_version(dto, release, version)
            upgrade = _UpgradeArgs(
                release=release,
                chart_ref=source.chart_ref,
                namespace=namespace,
                values_files=files,
                chart_version=version,
                labels=release_labels(dto),
                secrets=secrets,
                set_values=await self._replica_pin(dto, release, namespace),
            )
            if self.options.dry_run:
                await self._upgrade(upgrade, dry_run=True)
            # After the dry run: a deploy refused there must not change what the running release reads.
            before = await self._secrets.read(namespace, rendered.secret_name)
            await self._reconcile_secret(dto, rendered)
            try:
                await self._upgrade_watched(dto, upgrade)
            except BaseException:
                # helm rolled the release back (or was stopped): its pods read the Secret as it was.
                await self._restore_secret(dto, release, rendered.secret_name, before)
                raise
        return await self._success_message(release, namespace, source.chart_name, version)

    async def _replica_pin(self, dto: WorkloadDeployedDto, release: str, namespace: str) -> dict[str, str]:
        """``--set replicaCount=<live>`` on helm 4 (workloads/replicas.py); hibernation is in the values."""
        if dto.hibernated or self._replicas is None or (await self._helm.version()).major < 4:
            return {}
        live = await self._replicas.live_replicas(namespace, release)
        pin = replica_pin(live, hibernated=False, server_side_apply=True)
        if pin is None:
            return {}
        log.info("release %s: replicaCount pinned to the live count %d", release, pin)
        return {REPLICA_COUNT_KEY: str(pin)}

    async def _prepare_repository(self, source: ChartSource, dto: WorkloadDeployedDto) -> None:
        username = dto.repository_username or source.url_username
        password = dto.repository_password or source.url_password
        try:
            await self._repositories.prepare(source, username, password)
        except HelmError as exc:
            raise DeployFailed(str(exc)) from None  # octo-spec §4.2: names the alias, never the URL

    async def _reconcile_secret(self, dto: WorkloadDeployedDto, rendered: RenderedValues) -> None:
        namespace = self.namespace_for(dto.workload_type)
        if rendered.secret_data:
            labels = release_labels(dto)
            await self._secrets.apply(
                namespace, rendered.secret_name, rendered.secret_data, labels, dto.workload_name
            )
        else:
            await self._secrets.delete(namespace, rendered.secret_name)

    async def _restore_secret(
        self, dto: WorkloadDeployedDto, release: str, name: str, before: SecretSnapshot | None
    ) -> None:
        def log_failure(exc: Exception) -> None:
            # The deploy's own outcome is what the controller must see; this one goes to the log.
            log.error(
                "release %s: could not restore Secret %s after the failed upgrade: %s",
                release,
                name,
                redact(str(exc)),
                extra=workload_context(dto, release),
            )

        await restore_after_failure(
            lambda: self._secrets.restore(self.namespace_for(dto.workload_type), name, before), log_failure
        )

    async def _resolve_version(
        self, dto: WorkloadDeployedDto, release: str, version: str | None
    ) -> str | None:
        """octo-spec §4.8: a reconciliation without a pinned version keeps the installed chart version."""
        if version is not None or not dto.is_reconciliation:
            return version
        try:
            releases = await self._helm.list_releases(
                self.namespace_for(dto.workload_type), name_filter=f"^{release}$"
            )
        except (HelmError, ValueError) as exc:  # best effort (ValueError: unreadable JSON); deploy goes on
            log.warning(
                "release %s: cannot read the installed chart version (%s); using the newest", release, exc
            )
            return None
        prefix = f"{dto.chart_name}-"
        for entry in releases:
            chart = str(entry.get("chart", ""))
            if entry.get("name") == release and chart.startswith(prefix) and len(chart) > len(prefix):
                installed = chart[len(prefix) :]
                log.info(
                    "release %s: reconciliation keeps the installed chart version %s", release, installed
                )
                return installed
        return None

    async def _upgrade(self, args: _UpgradeArgs, *, dry_run: bool) -> None:
        with self._helm_run("dry-run" if dry_run else "upgrade"):
            await self._helm.upgrade_install(
                args.release,
                args.chart_ref,
                namespace=args.namespace,
                values_files=args.values_files,
                chart_version=args.chart_version,
                timeout_seconds=self.options.timeout_seconds,
                history_max=self.options.history_max,
                labels=args.labels,
                dry_run=dry_run,
                set_values=args.set_values,
                force_conflicts=self.options.force_conflicts and not dry_run,
                secrets=args.secrets,
            )

    @contextlib.contextmanager
    def _helm_run(self, operation: str) -> Iterator[None]:
        """Record a helm run in the metrics as success, cancelled, timeout or failure."""
        if self._metrics is None:
            yield
            return
        with self._metrics.time_helm_run(operation) as run:
            try:
                yield
            except asyncio.CancelledError:
                run.result = HelmOutcome.CANCELLED
                raise
            except HelmError as exc:
                run.result = HelmOutcome.TIMEOUT if exc.timed_out else HelmOutcome.FAILURE
                raise

    async def _upgrade_watched(self, dto: WorkloadDeployedDto, args: _UpgradeArgs) -> None:
        """The real upgrade, with live progress; stops helm early when the watcher calls a signal fatal."""
        watcher = self._watcher_factory(
            args.release, args.namespace, self._progress_sink(dto, args.secrets), sorted(args.secrets)
        )
        try:
            await watcher.start()
        except BaseException:
            # Cancelled (or failed) while the initial lists were still coming: its watches already run.
            await watcher.stop()
            raise
        helm_task = asyncio.create_task(self._upgrade(args, dry_run=False), name=f"helm-{args.release}")
        fatal_task = asyncio.create_task(watcher.fatal.wait(), name=f"fatal-{args.release}")
        try:
            done, _ = await asyncio.wait({helm_task, fatal_task}, return_when=asyncio.FIRST_COMPLETED)
            if helm_task in done:
                try:
                    helm_task.result()
                except HelmError as exc:
                    message = explain_field_conflict(str(exc))
                    raise DeployFailed(self._with_diagnostics(message, watcher.snapshot(), args)) from None
                return
            # Explain with what is wrong now, before helm's rollback deletes the failing pods.
            fatal = watcher.fatal_signals()[:3]
            causes = [describe(signal, limit=400, secrets=args.secrets) for signal in fatal]
            head = fail_fast_head(args.release, causes, self.options.timeout_seconds)
            message = self._with_diagnostics(head, watcher.snapshot(), args)
            log.warning(
                "release %s: stopping helm early (fail-fast): %s",
                args.release,
                "; ".join(describe(signal, limit=200, secrets=args.secrets) for signal in fatal)
                or "fatal signal",
                extra=workload_context(dto, args.release),
            )
            await watcher.stop()
            helm_task.cancel()
            await _settle(helm_task)
            self.stats.failed_fast += 1
            raise DeployFailed(message)
        finally:
            fatal_task.cancel()
            if not helm_task.done():
                helm_task.cancel()
            try:
                await _settle(helm_task)
            finally:
                # Even when cancelled again while helm stops: a watcher left running would keep sending
                # progress for this workload after its (or its successor's) final status.
                await watcher.stop()

    def _with_diagnostics(self, head: str, snapshot: str, args: _UpgradeArgs) -> str:
        return with_diagnostics(head, snapshot, limit=self.options.status_limit, secrets=args.secrets)

    async def _success_message(
        self, release: str, namespace: str, chart_name: str, version: str | None
    ) -> str:
        try:
            history = await self._helm.history(release, namespace, max_revisions=1)
        except (HelmError, ValueError) as exc:  # the deploy succeeded; only the message is plainer
            log.warning("release %s: cannot read the deployed revision (%s)", release, exc)
            history = []
        if not history:
            return f"Deployed {chart_name} {version or ''}".rstrip()
        latest = history[-1]
        chart = str(latest.get("chart", ""))
        prefix = f"{chart_name}-"
        installed = chart[len(prefix) :] if chart.startswith(prefix) else (version or chart)
        return f"Deployed revision {latest.get('revision')} of {chart_name} {installed}".rstrip()

    # -- undeploy -------------------------------------------------------------------------------------

    async def _undeploy(self, dto: WorkloadUndeployedDto, release: str) -> None:
        namespace = self.namespace_for(dto.workload_type)
        secret_name = release_secret_name(release)
        context = workload_context(dto, release)
        log.info("undeploying workload %s: release %s", dto.workload_rt_id, release, extra=context)
        try:
            async with self._slot():
                secret_deleted = await self._remove_release(release, namespace, secret_name)
        except asyncio.CancelledError:
            log.info("undeploy of release %s cancelled", release, extra=context)
            raise
        except (HelmError, SecretError) as exc:
            # The contract has no undeploy status; the log and the controller's next attempt are all.
            log.error(
                "undeploy of workload %s (release %s) failed: %s",
                dto.workload_rt_id,
                release,
                redact(str(exc)),
                extra=context,
            )
            return
        self.stats.undeploys += 1
        log.info(
            "undeployed workload %s: release %s uninstalled%s",
            dto.workload_rt_id,
            release,
            f", Secret {secret_name} deleted" if secret_deleted else "",
            extra=context,
        )

    async def _remove_release(self, release: str, namespace: str, secret_name: str) -> bool:
        """``helm uninstall``, never cancelled halfway, then the per-release Secret whatever helm said:
        its plaintext values must not outlive the workload. True when the Secret existed."""
        uninstall_error: HelmError | None = None
        try:
            with self._helm_run("uninstall"):
                await uninstall_to_completion(self._helm, release, namespace)
        except HelmError as exc:
            uninstall_error = exc
        finally:
            # Also when cancelled (shutdown) after helm finished: the deletion is one API call.
            secret_deleted = await self._secrets.delete(namespace, secret_name)
        if uninstall_error is not None:
            raise uninstall_error
        return secret_deleted

    # -- reports --------------------------------------------------------------------------------------

    def _progress_sink(self, dto: WorkloadDeployedDto, secrets: Iterable[str]) -> ProgressSink:
        secret_list = frozenset(secrets)

        async def sink(text: str) -> asyncio.Future[bool] | None:
            return await self._report_progress(dto, text, secret_list)

        return sink

    async def _report_progress(
        self, dto: WorkloadDeployedDto, text: str, secrets: Iterable[str]
    ) -> asyncio.Future[bool] | None:
        """Queue a progress report; the result settles when the controller has it (see hub.report)."""
        message = truncate_middle(redact(text, secrets), self.options.status_limit)
        log.info(
            "workload %s progress: %s",
            dto.workload_rt_id,
            _log_excerpt(message, secrets),
            extra=workload_context(dto, _release_or_none(dto)),
        )
        return await self._hub.report(
            ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS,
            WorkloadDeploymentProgressDto(
                tenant_id=dto.tenant_id,
                workload_name=dto.workload_name,
                workload_rt_id=dto.workload_rt_id,
                message=message,
            ),
        )

    async def _report_status(
        self,
        dto: WorkloadDeployedDto,
        success: bool,
        text: str,
        secrets: Iterable[str],
        release: str | None = None,
    ) -> None:
        message = truncate_middle(redact(text, secrets), self.options.status_limit)
        if not success:
            log.warning(
                "deploy of workload %s (%s) failed: %s",
                dto.workload_rt_id,
                dto.workload_name,
                _log_excerpt(message, secrets),
                extra=workload_context(dto, release),
            )
        delivery = await self._hub.report(
            ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS,
            WorkloadDeploymentStatusDto(
                tenant_id=dto.tenant_id,
                workload_name=dto.workload_name,
                workload_rt_id=dto.workload_rt_id,
                success=success,
                status_message=message,
            ),
        )
        self._undelivered.remember(workload_key(dto), deploy_content(dto), delivery)


@dataclass(frozen=True)
class _UpgradeArgs:
    release: str
    chart_ref: str
    namespace: str
    values_files: Sequence[Path]
    chart_version: str | None
    labels: dict[str, str]
    secrets: frozenset[str]
    set_values: dict[str, str] = field(default_factory=dict)  # the replica pin (workloads/replicas.py)


def _last_helm_run(run: _Run | None) -> _Run | None:
    """The newest deploy or undeploy at or behind ``run``, skipping queued scales."""
    while run is not None and run.kind == "scale":
        run = run.behind
    return run


def workload_context(
    dto: WorkloadDeployedDto | WorkloadUndeployedDto, release: str | None = None
) -> dict[str, str]:
    """``extra=`` for a log line about a workload: tenant, pool, workload and (when known) release."""
    return log_context(
        tenant=dto.tenant_id, pool=dto.pool_rt_id, workload=dto.workload_rt_id, release=release
    )


def _release_or_none(dto: WorkloadDeployedDto) -> str | None:
    try:
        return release_name(dto.tenant_id, dto.workload_rt_id)
    except NamingError:
        return None


def _log_excerpt(message: str, secrets: Iterable[str]) -> str:
    """A report as one bounded log line; joined and redacted again before it is cut."""
    return truncate_middle(redact(" | ".join(message.splitlines()), secrets), 600, separator=" ")


async def _settle(task: asyncio.Task[None]) -> None:
    """Wait until ``task`` has finished, even through our own cancellation (re-raised afterwards).

    helm's SIGTERM grace period runs inside that task; leaving early would let the next helm of the
    same release start while this one still runs.
    """
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, HelmCancelled | HelmError):
            log.debug("helm task ended with %r", exc)
    if cancelled:
        raise asyncio.CancelledError


def build_workload_service(
    settings: Settings,
    hub: ReportPort,
    api: Any,
    *,
    kubeconfig: Path | None = None,
    kube_context: str | None = None,
    metrics: OperatorMetrics | None = None,
) -> WorkloadService:
    """The service as the operator runs it: helm from ``OPERATOR__HELM__BINARY``, Secrets and watches
    through the operator's ``ApiClient`` (``api``), helm pointed at the same cluster."""
    if removed := remove_orphaned_values_dirs():
        log.info("removed %d values director(ies) left by an operator process that was killed", removed)
    from communication_operator.workloads.replicas import KubeReplicaReader
    from communication_operator.workloads.secrets import ReleaseSecrets
    from communication_operator.workloads.watcher import ReleaseWatcher

    options = WorkloadOptions.from_settings(settings)
    env: dict[str, str] = {}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    if kube_context:
        env["HELM_KUBECONTEXT"] = kube_context

    on_latency = metrics.observe_signal_to_report if metrics is not None else None

    def watcher(release: str, namespace: str, sink: ProgressSink, secrets: Sequence[str]) -> ReleaseWatcher:
        return ReleaseWatcher(
            api, namespace, release, sink, policy=options.fail_fast, secrets=secrets, on_latency=on_latency
        )

    return WorkloadService(
        hub,
        HelmCli(binary=settings.helm.binary, env=env),
        ReleaseSecrets(api),
        watcher,
        values_context_from_settings(settings),
        options,
        metrics=metrics,
        replicas=KubeReplicaReader(api),
    )


class PushSource(ReportPort, Protocol):
    def on_connected(self, hook: Callable[[], Awaitable[None]]) -> None: ...

    def on(
        self,
        method: Any,
        handler: Callable[..., Awaitable[None]],
        on_invalid: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None: ...


def bind_workloads_to_hub(
    hub: PushSource, service: WorkloadService, scale: ScaleHandler | None = None
) -> None:
    """Route the controller's workload pushes to the service, and refused ones to :mod:`.refusals`."""
    from communication_operator.contracts import ClientMethod
    from communication_operator.workloads.refusals import WorkloadPushRefusals

    refusals = WorkloadPushRefusals(hub, service.on_deploy_refused)
    hub.on_connected(service.connection_opened)
    hub.on(ClientMethod.WORKLOAD_DEPLOYED, service.on_workload_deployed, refusals.deploy_refused)
    hub.on(ClientMethod.WORKLOAD_UNDEPLOYED, service.on_workload_undeployed, refusals.undeploy_refused)
    if scale is not None:
        hub.on(ClientMethod.SCALE_WORKLOAD, scale.on_scale_workload, scale.scale_refused)
