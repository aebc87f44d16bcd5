"""Operator configuration, read from the upstream-compatible ``OPERATOR__*`` environment variables.

Every key is an environment variable with the prefix ``OPERATOR__``, ``__`` between nesting levels
and case-insensitive names, exactly as the .NET operator binds its ``Operator`` section (octo-spec
§7.1-7.2): ``OPERATOR__POOLNAMESPACE``, ``OPERATOR__AUTHENTICATION__CLIENTID``,
``OPERATOR__INGRESS__ANNOTATIONS__0__NAME``. Keys this port adds follow the same scheme
(``OPERATOR__HELM__TIMEOUTSECONDS``, ``OPERATOR__LOG__FORMAT``, ...).

:func:`load_settings` turns a validation failure into one :class:`ConfigurationError` whose text names
each offending variable and never echoes its value (values may be secrets).

A leaf module: it imports nothing of ours. Mapping settings to the services' options (the hub's
connection options and token source, the workload and pool options) is the composition root's job
(:mod:`communication_operator.runtime`).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

ENV_PREFIX = "OPERATOR__"
#: The values of ``OPERATOR__CONTRACT``: which controller generation to speak (contracts/profiles.py).
CONTRACT_SETTINGS = ("auto", "pools", "deploymentsites")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


UNPARSABLE_SECTION = "{name}: not a JSON object (or set its keys one by one as {name}__<KEY>)"


class ConfigurationError(Exception):
    """Invalid operator configuration; the message names the environment variable(s) at fault."""


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class _Section(BaseModel):
    """A nested ``OPERATOR__<SECTION>__*`` group; field aliases are the upstream key names (lower case)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


def _indexed_list(value: Any) -> Any:
    """``X__0__NAME=a`` arrives as ``{"0": {"name": "a"}}``; .NET binds that to a list ordered by index."""
    if isinstance(value, dict) and all(isinstance(k, str) and k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return value


class AuthenticationSettings(_Section):
    """OAuth2 client-credentials authentication to the controller hub (octo-spec §7.4)."""

    issuer_uri: str | None = Field(default=None, alias="issueruri")
    client_id: str | None = Field(default=None, alias="clientid")
    client_secret: SecretStr | None = Field(default=None, alias="clientsecret")
    tenant_id: str | None = Field(default=None, alias="tenantid")

    @property
    def enabled(self) -> bool:
        """Upstream rule: enabled when both the issuer and the client id are set."""
        return bool(self.issuer_uri and self.client_id)

    @model_validator(mode="after")
    def _issuer_and_client_together(self) -> AuthenticationSettings:
        if bool(self.issuer_uri) != bool(self.client_id):
            missing = "ISSUERURI" if not self.issuer_uri else "CLIENTID"
            raise ValueError(
                f"{ENV_PREFIX}AUTHENTICATION__{missing} must be set as well "
                "(ISSUERURI and CLIENTID enable authentication together)"
            )
        return self


class ClusterDependenciesSettings(_Section):
    """Cluster context projected into workload values (used by the workload deployer)."""

    mongodb_host: str | None = Field(default=None, alias="mongodbhost")
    mongodb_replica_set: str | None = Field(default=None, alias="mongodbreplicaset")
    rabbitmq_host: str | None = Field(default=None, alias="rabbitmqhost")
    rabbitmq_user: str | None = Field(default=None, alias="rabbitmquser")
    stream_data_host: str | None = Field(default=None, alias="streamdatahost")
    stream_data_user: str | None = Field(default=None, alias="streamdatauser")
    system_database_name: str | None = Field(default=None, alias="systemdatabasename")
    stream_data_schema_instance_prefix: str | None = Field(
        default=None, alias="streamdataschemainstanceprefix"
    )


class ClusterSecretsSettings(_Section):
    """Data-store credentials injected into workloads that opt in (``ReceivesClusterSecrets``)."""

    mongodb_user_password: SecretStr | None = Field(default=None, alias="mongodbuserpassword")
    mongodb_admin_password: SecretStr | None = Field(default=None, alias="mongodbadminpassword")
    stream_data_password: SecretStr | None = Field(default=None, alias="streamdatapassword")


class IngressAnnotation(_Section):
    name: str = Field(alias="name")
    value: str = Field(default="", alias="value")


class IngressSettings(_Section):
    class_name: str | None = Field(default=None, alias="classname")
    cluster_issuer: str | None = Field(default=None, alias="clusterissuer")
    # None (unset) projects no ``ingress.tls``: the chart's own default applies, as upstream.
    tls: bool | None = Field(default=None, alias="tls")
    annotations: list[IngressAnnotation] = Field(default_factory=list, alias="annotations")

    _annotations_by_index = field_validator("annotations", mode="before")(_indexed_list)


class HelmSettings(_Section):
    timeout_seconds: float = Field(default=300.0, gt=0, alias="timeoutseconds")
    max_concurrent: int = Field(default=4, ge=1, alias="maxconcurrent")
    # helm 4: take over fields another field manager owns (server-side apply) on the real upgrade.
    force_conflicts: bool = Field(default=False, alias="forceconflicts")
    history_max: int = Field(default=5, ge=0, alias="historymax")
    binary: str = Field(default="helm", min_length=1, alias="binary")
    # Fail-fast: stop helm early when a pod problem is hopeless (workloads/signals.py FailFastPolicy).
    fail_fast: bool = Field(default=True, alias="failfast")
    fail_fast_image_pull_seconds: float = Field(
        default=120.0, ge=0, alias="failfastimagepullseconds", description="any image pull error"
    )
    fail_fast_image_not_found_seconds: float = Field(
        default=20.0, ge=0, alias="failfastimagenotfoundseconds", description="pull: not found/unauthorized"
    )
    fail_fast_crash_loop_restarts: int = Field(default=3, ge=1, alias="failfastcrashlooprestarts")
    fail_fast_unschedulable_seconds: float = Field(default=120.0, ge=0, alias="failfastunschedulableseconds")


class MetricsSettings(_Section):
    port: int = Field(default=9090, ge=0, le=65535, alias="port", description="0 disables the endpoint")


class HealthSettings(_Section):
    port: int = Field(default=8080, ge=0, le=65535, alias="port", description="0 disables /healthz")


class LogSettings(_Section):
    format: LogFormat = Field(default=LogFormat.JSON, alias="format")
    level: str = Field(default="INFO", alias="level")

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper


def _env(name: str) -> Any:
    """A field bound to ``OPERATOR__<NAME>`` (an alias switches off pydantic-settings' prefix)."""
    return f"{ENV_PREFIX}{name}"


def _ds_alias(name: str) -> AliasChoices:
    """Our name, and the DeploymentSite-era name of the same setting (POOL → DEPLOYMENTSITE)."""
    return AliasChoices(
        _env(name), _env(name.replace("POOLS", "DEPLOYMENTSITES").replace("POOL", "DEPLOYMENTSITE"))
    )


class Settings(BaseSettings):
    """All operator settings. Construct with :func:`load_settings` to get readable errors."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        populate_by_name=True,
        extra="ignore",  # upstream keys this port does not use (DEFAULTPOOLNAME, DEVWEBHOOKHOST, ...)
        frozen=True,
    )

    # Controller connection.
    communication_controller_uri: str | None = Field(default=None, alias=_env("COMMUNICATIONCONTROLLERURI"))
    controller_verify_tls: bool = Field(default=True, alias=_env("CONTROLLERVERIFYTLS"))
    # Must exist at start: a CA bundle that is not there would only show as failed TLS handshakes later.
    controller_ca_file: FilePath | None = Field(default=None, alias=_env("CONTROLLERCAFILE"))
    controller_server_timeout_seconds: float = Field(
        default=30.0, gt=0, alias=_env("CONTROLLERSERVERTIMEOUTSECONDS")
    )
    controller_keepalive_seconds: float = Field(default=15.0, gt=0, alias=_env("CONTROLLERKEEPALIVESECONDS"))
    controller_invoke_timeout_seconds: float = Field(
        default=30.0, gt=0, alias=_env("CONTROLLERINVOKETIMEOUTSECONDS")
    )
    authentication: AuthenticationSettings = Field(
        default_factory=AuthenticationSettings, alias=_env("AUTHENTICATION")
    )

    # Pools.
    # DS-era names (OPERATOR__AUTOMANAGEDEPLOYMENTSITES, ...) are accepted as aliases of ours.
    auto_manage_pools: bool = Field(
        default=False, alias=_env("AUTOMANAGEPOOLS"), validation_alias=_ds_alias("AUTOMANAGEPOOLS")
    )
    watch_namespace: str = Field(default="", alias=_env("WATCHNAMESPACE"))
    pool_namespace: str = Field(
        default="octo", alias=_env("POOLNAMESPACE"), validation_alias=_ds_alias("POOLNAMESPACE")
    )
    # Where adapter-pool workloads (workloadType 2) are installed; empty = the pool namespace.
    platform_namespace: str = Field(default="", alias=_env("PLATFORMNAMESPACE"))
    pool_registration_retry_seconds: float = Field(
        default=30.0,
        alias=_env("POOLREGISTRATIONRETRYSECONDS"),
        validation_alias=_ds_alias("POOLREGISTRATIONRETRYSECONDS"),
    )
    # Which controller generation to speak: auto (detected per connection), pools, deploymentsites.
    contract: str = Field(default="auto", alias=_env("CONTRACT"))
    pre_update_tenant_delay_seconds: float = Field(
        default=5.0, ge=0, alias=_env("PREUPDATETENANTDELAYSECONDS")
    )
    shutdown_drain_seconds: float = Field(default=10.0, ge=0, alias=_env("SHUTDOWNDRAINSECONDS"))

    # Broker (central mode writes these into each pool's connection secret).
    broker_host: str | None = Field(default=None, alias=_env("BROKERHOST"))
    broker_virtual_host: str = Field(default="/", alias=_env("BROKERVIRTUALHOST"))
    broker_port: int = Field(default=5672, ge=1, le=65535, alias=_env("BROKERPORT"))
    broker_user: str | None = Field(default=None, alias=_env("BROKERUSER"))
    broker_password: SecretStr | None = Field(default=None, alias=_env("BROKERPASSWORD"))

    # Values projected into workloads (used by the workload deployer).
    instance_prefix: str | None = Field(default=None, alias=_env("INSTANCEPREFIX"))
    workload_communication_controller_uri: str | None = Field(
        default=None, alias=_env("WORKLOADCOMMUNICATIONCONTROLLERURI")
    )
    reporting_service_uri: str | None = Field(default=None, alias=_env("REPORTINGSERVICEURI"))
    auth_uri: str | None = Field(default=None, alias=_env("AUTHURI"))
    image_registry: str | None = Field(default=None, alias=_env("IMAGEREGISTRY"))
    adapter_ignore_certificate_validation: bool = Field(
        default=False, alias=_env("ADAPTERIGNORECERTIFICATEVALIDATION")
    )
    root_ca_certificate: str | None = Field(default=None, repr=False, alias=_env("ROOTCACERTIFICATE"))
    cluster_dependencies: ClusterDependenciesSettings = Field(
        default_factory=ClusterDependenciesSettings, alias=_env("CLUSTERDEPENDENCIES")
    )
    cluster_secrets: ClusterSecretsSettings = Field(
        default_factory=ClusterSecretsSettings, alias=_env("CLUSTERSECRETS")
    )
    ingress: IngressSettings = Field(default_factory=IngressSettings, alias=_env("INGRESS"))

    # Ours.
    helm: HelmSettings = Field(default_factory=HelmSettings, alias=_env("HELM"))
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, alias=_env("METRICS"))
    health: HealthSettings = Field(default_factory=HealthSettings, alias=_env("HEALTH"))
    log: LogSettings = Field(default_factory=LogSettings, alias=_env("LOG"))

    @field_validator("communication_controller_uri", "workload_communication_controller_uri")
    @classmethod
    def _http_uri(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("pool_namespace")
    @classmethod
    def _pool_namespace_is_dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError("must be a Kubernetes namespace name (lower-case DNS label)")
        return value

    @field_validator("contract")
    @classmethod
    def _known_contract(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in CONTRACT_SETTINGS:
            raise ValueError(f"must be one of {', '.join(CONTRACT_SETTINGS)}")
        return value

    @field_validator("platform_namespace")
    @classmethod
    def _platform_namespace_is_dns_label(cls, value: str) -> str:
        value = value.strip()
        if value and not _DNS_LABEL.match(value):
            raise ValueError("must be empty (the pool namespace) or a Kubernetes namespace name")
        return value

    @field_validator("watch_namespace")
    @classmethod
    def _watch_namespace_is_dns_label(cls, value: str) -> str:
        value = value.strip()
        if value and not _DNS_LABEL.match(value):
            raise ValueError("must be empty (all namespaces) or a Kubernetes namespace name")
        return value

    @property
    def mode_name(self) -> str:
        return "central" if self.auto_manage_pools else "edge"

    @property
    def registration_retry_enabled(self) -> bool:
        return self.pool_registration_retry_seconds > 0

    def require_controller_uri(self) -> str:
        """The controller base URI, which ``run`` needs; raises :class:`ConfigurationError` if unset."""
        if not self.communication_controller_uri:
            raise ConfigurationError(
                f"{_env('COMMUNICATIONCONTROLLERURI')}: required to run the operator "
                "(the controller's base URL, e.g. https://octo.example.com/communication)"
            )
        return self.communication_controller_uri


def load_settings() -> Settings:
    """Read settings from the process environment.

    Raises :class:`ConfigurationError` whose text names every offending variable (never its value).
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None
    except SettingsError as exc:
        # A nested section given as one variable that is not JSON; the decoder's text is not shown.
        field = re.search(r'field "([^"]+)"', str(exc))
        name = env_name((field.group(1),)) if field else f"{ENV_PREFIX}(settings)"
        raise ConfigurationError(UNPARSABLE_SECTION.format(name=name)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """``OPERATOR__X: message`` per error, joined with ``; `` — values are never included."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{env_name(error['loc'])}: {message}")
    return "; ".join(dict.fromkeys(parts))


def env_name(loc: tuple[int | str, ...]) -> str:
    """Map a pydantic error location (aliases or field names, list indexes) to the environment variable."""
    names: list[str] = []
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
            names.append(str(part))
            continue
        field_alias, model = _resolve(model, str(part))
        names.append(field_alias.upper())
    if not names:
        return f"{ENV_PREFIX}(settings)"
    joined = "__".join(names)
    return joined if joined.startswith(ENV_PREFIX) else f"{ENV_PREFIX}{joined}"


def _resolve(model: type[BaseModel] | None, part: str) -> tuple[str, type[BaseModel] | None]:
    if model is None:
        return part, None
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if part in (name, alias) or part.casefold() == alias.casefold():
            return alias, _nested_model(field.annotation)
    return part, None


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None
