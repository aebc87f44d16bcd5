"""The secrets in the operator's settings, for the log safety net (:func:`~.redaction.remember_secrets`)."""

from __future__ import annotations

from communication_operator.redaction import url_passwords
from communication_operator.settings import Settings


def configured_secrets(settings: Settings) -> frozenset[str]:
    """Every secret in the settings: the client secret, the broker and cluster passwords, and passwords
    written into the configured URLs."""
    secrets = (
        settings.authentication.client_secret,
        settings.broker_password,
        settings.cluster_secrets.mongodb_user_password,
        settings.cluster_secrets.mongodb_admin_password,
        settings.cluster_secrets.stream_data_password,
    )
    values = {secret.get_secret_value() for secret in secrets if secret is not None}
    for uri in (
        settings.communication_controller_uri,
        settings.workload_communication_controller_uri,
        settings.reporting_service_uri,
        settings.auth_uri,
        settings.authentication.issuer_uri,
    ):
        values |= url_passwords(uri or "")
    return frozenset(value for value in values if value)
