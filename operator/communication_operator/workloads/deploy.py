"""One deploy, start to end: the named steps of :mod:`.steps` in order, and its one final status.

validate → repository → values files in a private temporary directory (removed afterwards) →
recover a release stuck in ``pending-*`` (reported as progress) → resolve the chart version (and the
replica pin) → server-side dry run → the per-release Secret → the watched upgrade → the rollout check →
the final status, always after the deploy's last progress report. :class:`DeployPipeline` runs it as
the scheduler's ``deploy`` action (:mod:`.scheduler`); a cancelled deploy reports nothing (see
:mod:`.service`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Final

from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.hub.ports import Delivery
from communication_operator.metrics import OperatorMetrics
from communication_operator.redaction import redact
from communication_operator.workloads.context import workload_context
from communication_operator.workloads.errors import InvalidWorkload, StoppedEarly, WorkloadError
from communication_operator.workloads.naming import release_labels
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.refresh import RepositoryRefresher
from communication_operator.workloads.replicas import ReplicaReader
from communication_operator.workloads.repository import ChartSource
from communication_operator.workloads.rollout import RolloutReader
from communication_operator.workloads.secrets import SecretStore
from communication_operator.workloads.steps.dry_run import dry_run
from communication_operator.workloads.steps.helm_upgrade import UpgradeArgs
from communication_operator.workloads.steps.recover import recover
from communication_operator.workloads.steps.replica_pin import replica_pin_values
from communication_operator.workloads.steps.report import Reporter, operator_failure, success_message
from communication_operator.workloads.steps.repository import prepare_repository
from communication_operator.workloads.steps.resolve_version import resolve_version
from communication_operator.workloads.steps.rollout_check import check_rollout
from communication_operator.workloads.steps.secret import apply_secret, restore_secret
from communication_operator.workloads.steps.upgrade import watched_upgrade
from communication_operator.workloads.steps.validate import ValidDeploy, chart_of, deploy_secrets, validate
from communication_operator.workloads.values import OperatorContext as ValuesContext
from communication_operator.workloads.valuesdirs import values_files
from communication_operator.workloads.watcher import ProgressSink, WatcherFactory

log = logging.getLogger(__name__)

DEPLOYING_LOG: Final = "deploying workload %s (%s) as release %s in %s: chart %s %s"
CANCELLED_LOG: Final = "deploy of release %s cancelled (%s); no status reported"
CRASHED_LOG: Final = "deploy of release %s failed unexpectedly"
DEPLOYED_LOG: Final = "release %s deployed in %.1f s: %s"


@dataclass(frozen=True)
class DeployTools:
    """What the steps of a deploy use; built once by :class:`~.service.WorkloadService`."""

    helm: HelmPort
    secrets: SecretStore
    watchers: WatcherFactory
    values: ValuesContext
    options: WorkloadOptions
    metrics: OperatorMetrics
    reporter: Reporter
    repositories: RepositoryRefresher
    slot: Callable[[], AbstractAsyncContextManager[None]]
    cancel_reason: Callable[[str], str]
    replicas: ReplicaReader | None = None
    rollouts: RolloutReader | None = None


class DeployPipeline:
    """Runs one deploy of a release through the steps; reports exactly one final status unless cancelled."""

    def __init__(self, tools: DeployTools) -> None:
        self._tools = tools

    async def run(self, dto: WorkloadDeployedDto, release: str) -> None:
        tools = self._tools
        tools.metrics.record_deploy_started()
        secrets = deploy_secrets(dto, tools.values)
        context = workload_context(dto, release)
        started = time.monotonic()
        namespace = tools.options.namespace_for(dto.workload_type)
        try:
            source = chart_of(dto)
            secrets = secrets | {source.url_password} if source.url_password else secrets
            valid = validate(dto, tools.values)
        except InvalidWorkload as exc:
            tools.metrics.record_deploy_outcome(failed=True)
            await tools.reporter.status(dto, False, str(exc), secrets, release)
            return
        log.info(
            DEPLOYING_LOG,
            dto.workload_rt_id,
            dto.workload_name,
            release,
            namespace,
            redact(source.chart_ref),
            valid.version or "(newest)",
            extra=context,
        )
        try:
            await prepare_repository(tools.repositories, source, dto)  # takes a slot only while helm runs
            async with tools.slot():
                message = await self._deploy_release(dto, release, namespace, source, valid, secrets)
        except asyncio.CancelledError:
            tools.metrics.record_deploy_cancelled()
            log.info(CANCELLED_LOG, release, tools.cancel_reason(release), extra=context)
            raise
        except WorkloadError as exc:
            tools.metrics.record_deploy_outcome(failed=True, stopped_early=isinstance(exc, StoppedEarly))
            await tools.reporter.status(dto, False, str(exc), secrets, release)
        except Exception as exc:
            tools.metrics.record_deploy_outcome(failed=True)
            log.exception(CRASHED_LOG, release, extra=context)
            await tools.reporter.status(dto, False, operator_failure(exc), secrets, release)
        else:
            tools.metrics.record_deploy_outcome(failed=False)
            elapsed = time.monotonic() - started
            log.info(DEPLOYED_LOG, release, elapsed, redact(message, secrets), extra=context)
            await tools.reporter.status(dto, True, message, secrets, release)

    async def _deploy_release(
        self,
        dto: WorkloadDeployedDto,
        release: str,
        namespace: str,
        source: ChartSource,
        valid: ValidDeploy,
        secrets: frozenset[str],
    ) -> str:
        tools = self._tools
        context = workload_context(dto, release)
        with values_files(valid.rendered) as files:
            recovered = await recover(
                tools.helm,
                release,
                namespace,
                timeout_seconds=tools.options.timeout_seconds,
                secrets=secrets,
                progress=lambda text: tools.reporter.progress(dto, text, secrets),
                context=context,
            )
            if recovered is not None:
                tools.metrics.record_release_recovery()
            version = await resolve_version(tools.helm, dto, release, namespace, valid.version)
            upgrade = UpgradeArgs(
                release=release,
                chart_ref=source.chart_ref,
                namespace=namespace,
                values_files=files,
                chart_version=version,
                labels=release_labels(dto),
                secrets=secrets,
                set_values=await replica_pin_values(tools.helm, tools.replicas, dto, release, namespace),
            )
            await dry_run(tools.helm, tools.options, tools.metrics, upgrade)
            # After the dry run: a deploy refused there must not change what the running release reads.
            before = await apply_secret(tools.secrets, namespace, dto, valid.rendered)
            try:
                sink = self._progress_sink(dto, secrets)
                watcher = tools.watchers(release, namespace, sink, sorted(secrets))
                await watched_upgrade(tools.helm, tools.options, tools.metrics, watcher, upgrade, context)
            except BaseException:
                # helm rolled the release back (or was stopped): its pods read the Secret as it was.
                name = valid.rendered.secret_name
                await restore_secret(tools.secrets, namespace, release, name, before, context)
                raise
        await check_rollout(tools.helm, tools.rollouts, release, namespace, context)
        return await success_message(tools.helm, release, namespace, source.chart_name, version)

    def _progress_sink(self, dto: WorkloadDeployedDto, secrets: frozenset[str]) -> ProgressSink:
        reporter = self._tools.reporter

        async def sink(text: str) -> Delivery:
            return await reporter.progress(dto, text, secrets)

        return sink
