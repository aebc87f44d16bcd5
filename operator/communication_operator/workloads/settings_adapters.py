"""The workload service's view of the operator settings (``OPERATOR__*``): pure adapters, no behaviour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from communication_operator.workloads.signals.policy import FailFastPolicy
from communication_operator.workloads.values import OperatorContext as ValuesContext

if TYPE_CHECKING:
    from communication_operator.settings import Settings


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
    from communication_operator.workloads.values import ClusterDependencies, ClusterSecrets, IngressDefaults

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
