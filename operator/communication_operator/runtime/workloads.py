"""Composition of the workloads: settings → options, the service as the operator runs it, its hub routes.

The only place that reads :class:`~communication_operator.settings.Settings` for the workloads and
builds their adapters (helm CLI, Secrets, watches, replica reads); :mod:`communication_operator.workloads`
itself takes options and ports.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from communication_operator.contracts import ClientMethod
from communication_operator.hub.ports import PushSource, ReportPort
from communication_operator.metrics import OperatorMetrics
from communication_operator.settings import Settings
from communication_operator.workloads.helm import HelmCli
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.refusals import WorkloadPushRefusals
from communication_operator.workloads.replicas import KubeReplicaReader
from communication_operator.workloads.rollout import KubeRolloutReader
from communication_operator.workloads.scale import ScaleHandler
from communication_operator.workloads.secrets import ReleaseSecrets
from communication_operator.workloads.service import WorkloadService
from communication_operator.workloads.signals.policy import FailFastPolicy
from communication_operator.workloads.values import ClusterDependencies, ClusterSecrets, IngressDefaults
from communication_operator.workloads.values import OperatorContext as ValuesContext
from communication_operator.workloads.valuesdirs import remove_orphaned_values_dirs
from communication_operator.workloads.watcher import ProgressSink, ReleaseWatcher

log = logging.getLogger(__name__)


def workload_options(settings: Settings) -> WorkloadOptions:
    """``OPERATOR__HELM__*`` and the namespaces: how deploys run."""
    return WorkloadOptions(
        namespace=settings.pool_namespace,
        platform_namespace=settings.platform_namespace,
        timeout_seconds=settings.helm.timeout_seconds,
        history_max=settings.helm.history_max,
        max_concurrent=settings.helm.max_concurrent,
        force_conflicts=settings.helm.force_conflicts,
        fail_fast=fail_fast_policy_from_settings(settings),
    )


def fail_fast_policy_from_settings(settings: Settings) -> FailFastPolicy:
    """``OPERATOR__HELM__FAILFAST*``: the switch and the thresholds operators tune; the rest keep defaults."""
    helm = settings.helm
    return FailFastPolicy(
        enabled=helm.fail_fast,
        image_pull_grace_seconds=helm.fail_fast_image_pull_seconds,
        hard_image_pull_grace_seconds=helm.fail_fast_image_not_found_seconds,
        crash_loop_restarts=helm.fail_fast_crash_loop_restarts,
        unschedulable_grace_seconds=helm.fail_fast_unschedulable_seconds,
    )


def values_context_from_settings(settings: Settings) -> ValuesContext:
    """The operator's part of every workload's values (octo-spec §4.6/4.7), from its settings."""
    deps = settings.cluster_dependencies
    cluster_secrets = settings.cluster_secrets

    def plain(secret: Any) -> str | None:
        return secret.get_secret_value() if secret is not None else None

    return ValuesContext(
        pool_namespace=settings.pool_namespace,
        instance_prefix=settings.instance_prefix,
        communication_controller_uri=settings.communication_controller_uri,
        workload_communication_controller_uri=settings.workload_communication_controller_uri,
        reporting_service_uri=settings.reporting_service_uri,
        auth_uri=settings.auth_uri,
        image_registry=settings.image_registry,
        cluster_dependencies=ClusterDependencies(
            mongodb_host=deps.mongodb_host,
            mongodb_replica_set=deps.mongodb_replica_set,
            rabbit_mq_host=deps.rabbitmq_host,
            rabbit_mq_user=deps.rabbitmq_user,
            stream_data_host=deps.stream_data_host,
            stream_data_user=deps.stream_data_user,
            system_database_name=deps.system_database_name,
            stream_data_schema_instance_prefix=deps.stream_data_schema_instance_prefix,
        ),
        ingress=IngressDefaults(
            class_name=settings.ingress.class_name,
            cluster_issuer=settings.ingress.cluster_issuer,
            tls=settings.ingress.tls,
            annotations=tuple((a.name, a.value) for a in settings.ingress.annotations),
        ),
        broker_password=plain(settings.broker_password),
        root_ca_certificate=settings.root_ca_certificate,
        cluster_secrets=ClusterSecrets(
            mongodb_user_password=plain(cluster_secrets.mongodb_user_password),
            mongodb_admin_password=plain(cluster_secrets.mongodb_admin_password),
            stream_data_password=plain(cluster_secrets.stream_data_password),
        ),
    )


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
    options = workload_options(settings)
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
        rollouts=KubeRolloutReader(api),
    )


class WorkloadPushSource(ReportPort, PushSource, Protocol):
    """What :func:`bind_workloads_to_hub` uses of the hub connection: pushes, connects, and reports (the
    refusals report a failed status)."""


def bind_workloads_to_hub(
    hub: WorkloadPushSource, service: WorkloadService, scale: ScaleHandler | None = None
) -> None:
    """Route the controller's workload pushes to the service, and refused ones to :mod:`.refusals`."""
    refusals = WorkloadPushRefusals(hub, service.on_deploy_refused)
    hub.on_connected(service.connection_opened)
    hub.on(ClientMethod.WORKLOAD_DEPLOYED, service.on_workload_deployed, refusals.deploy_refused)
    hub.on(ClientMethod.WORKLOAD_UNDEPLOYED, service.on_workload_undeployed, refusals.undeploy_refused)
    if scale is not None:
        hub.on(ClientMethod.SCALE_WORKLOAD, scale.on_scale_workload, scale.scale_refused)
