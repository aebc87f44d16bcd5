"""Settings → the hub: connection options, the OAuth2 token source, and the connection itself.

The operator's ``OPERATOR__*`` settings know nothing of the hub (:mod:`communication_operator.settings`
is a leaf); this module maps them. Used by :func:`~.context.build_runtime` and by
``communication-operator check``.
"""

from __future__ import annotations

import logging

from pydantic import SecretStr

from communication_operator.contracts.profiles import ContractSelector
from communication_operator.hub import HubConnection, HubOptions
from communication_operator.hub.auth import ANONYMOUS_STARTUP_WARNING, ClientCredentialsTokenProvider
from communication_operator.metrics import OperatorMetrics
from communication_operator.settings import Settings
from communication_operator.supervision import TaskSupervisor

log = logging.getLogger(__name__)

NO_AUTH_TENANT_WARNING = (
    "OPERATOR__AUTHENTICATION__TENANTID is not set; the controller expects the system tenant"
)


def hub_options(settings: Settings) -> HubOptions:
    """Connection options for :class:`~communication_operator.hub.HubConnection`."""
    return HubOptions(
        url=settings.require_controller_uri(),
        server_timeout=settings.controller_server_timeout_seconds,
        keepalive_interval=settings.controller_keepalive_seconds,
        invoke_timeout=settings.controller_invoke_timeout_seconds,
        verify_tls=settings.controller_verify_tls,
        ca_file=str(settings.controller_ca_file) if settings.controller_ca_file else None,
    )


def token_provider(settings: Settings) -> ClientCredentialsTokenProvider | None:
    """The hub's OAuth2 client-credentials token source, or ``None`` when authentication is off."""
    auth = settings.authentication
    if not auth.enabled:
        return None
    assert auth.issuer_uri is not None
    assert auth.client_id is not None
    return ClientCredentialsTokenProvider(
        issuer_uri=auth.issuer_uri,
        client_id=auth.client_id,
        client_secret=auth.client_secret or SecretStr(""),
        tenant_id=auth.tenant_id,
        verify_tls=settings.controller_verify_tls,
        ca_file=str(settings.controller_ca_file) if settings.controller_ca_file else None,
    )


def build_hub(settings: Settings, metrics: OperatorMetrics, supervisor: TaskSupervisor) -> HubConnection:
    """The operator's one hub connection (not started), speaking the configured controller generation."""
    if settings.authentication.enabled and not settings.authentication.tenant_id:
        log.warning(NO_AUTH_TENANT_WARNING)
    provider = token_provider(settings)
    if provider is None:
        log.warning(ANONYMOUS_STARTUP_WARNING)
    options = hub_options(settings)
    hub = HubConnection(options, token_provider=provider, metrics=metrics, supervisor=supervisor)
    hub.contract = ContractSelector(settings.contract)
    return hub
