"""The helm values for one workload deploy (octo-spec §4.6, §4.7, §4.9).

Three documents, passed to helm as ``-f`` in this order (later wins):

1. ``values-context.yaml`` — what the operator knows: tenant and workload ids, controller and
   service URIs, image registry, cluster dependencies, ingress defaults, ``publicUri``;
2. ``values-base.yaml`` — the DTO's ``valuesYaml``, verbatim;
3. ``values-overrides.yaml`` — the operator's injected entries followed by the DTO's ``values``,
   each placed at its dotted path; a later entry for the same path wins.

An empty document is an empty string; its file is left out (:meth:`RenderedValues.files`).

Quoting: the context and overrides documents are written with every string scalar *and every key*
double-quoted, booleans and numbers plain. A double-quoted scalar is a string to every YAML parser,
so a 24-digit rt id, ``"0123"``, ``"1e5"``, ``"true"``, ``"null"`` or ``"~"`` reach the chart as
strings (Helm's Go YAML parser would otherwise read some of them as numbers, booleans or null).
Override values are strings on the wire, so numeric overrides reach the chart as strings, as upstream.

Secrets never enter a values document. A secret-flagged override and the injected broker password
(``secrets.rabbitmq``) and cluster secrets (``secrets.databaseUser``, ``secrets.databaseAdmin``,
``secrets.streamDataPassword``, only when the DTO has ``receivesClusterSecrets``) go into
:attr:`RenderedValues.secret_data`, destined for the per-release Secret ``{release}-octo-secrets``;
the document holds, at that path, the upstream reference
``{valueFrom: {secretKeyRef: {name: <secret>, key: <key>}}}``. The key is the dotted path as written
(upstream's choice, so charts find it) unless that is not a valid Secret key, in which case it is the
path with invalid characters replaced by ``_`` and a short hash appended. Charts must accept either a
plain string or such a map at each ``secrets.*`` path (octo-spec §4.7).

The root CA certificate (``secrets.rootCa``) is injected as a plain value, not a secret reference:
it is public, and the workload charts ``b64enc`` ``.Values.secrets.rootCa`` directly, so a
``valueFrom`` map there would break rendering (upstream learned this the hard way).

Path syntax: segments separated by ``.``; ``\\.`` is a literal dot inside a segment (for keys such
as ``cert-manager.io/cluster-issuer``) and ``\\\\`` a literal backslash; any other backslash is kept
as is. Blank paths are skipped, as upstream. Empty segments, and two paths where one is a strict
prefix of the other (``image`` and ``image.tag``: a value cannot be both a string and a map) raise
:class:`ValuesError` naming both paths, instead of upstream's silent overwrite.

Hibernation: a hibernated workload gets ``replicaCount: 0`` (an integer) as the last word of the
overrides document, replacing whatever an override set there — the same effect as upstream's
``--set replicaCount=0``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from communication_operator.contracts import ValueOverrideDto, WorkloadDeployedDto, WorkloadType
from communication_operator.workloads.naming import release_name, release_secret_name

CONTEXT_FILE = "values-context.yaml"
BASE_FILE = "values-base.yaml"
OVERRIDES_FILE = "values-overrides.yaml"

PATH_BROKER_PASSWORD = "secrets.rabbitmq"
PATH_ROOT_CA = "secrets.rootCa"
PATH_DATABASE_USER = "secrets.databaseUser"
PATH_DATABASE_ADMIN = "secrets.databaseAdmin"
PATH_STREAM_DATA_PASSWORD = "secrets.streamDataPassword"

_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_SECRET_KEY_MAX_LENGTH = 253


class ValuesError(ValueError):
    """The workload's overrides cannot be turned into a values document; the message names the paths."""


@dataclass(frozen=True)
class ClusterDependencies:
    """``OPERATOR__CLUSTERDEPENDENCIES__*``, projected under ``clusterDependencies`` when set."""

    mongodb_host: str | None = None
    mongodb_replica_set: str | None = None
    rabbit_mq_host: str | None = None
    rabbit_mq_user: str | None = None
    stream_data_host: str | None = None
    stream_data_user: str | None = None
    system_database_name: str | None = None
    stream_data_schema_instance_prefix: str | None = None


@dataclass(frozen=True)
class IngressDefaults:
    """``OPERATOR__INGRESS__*``: cluster-wide ingress settings projected for every workload."""

    class_name: str | None = None
    cluster_issuer: str | None = None
    tls: bool | None = None
    annotations: tuple[tuple[str, str], ...] = ()  # (name, value); a name repeated later wins


@dataclass(frozen=True)
class ClusterSecrets:
    """``OPERATOR__CLUSTERSECRETS__*``: injected only into workloads with ``receivesClusterSecrets``."""

    mongodb_user_password: str | None = field(default=None, repr=False)
    mongodb_admin_password: str | None = field(default=None, repr=False)
    stream_data_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class OperatorContext:
    """What the operator contributes to every workload's values (from its configuration)."""

    pool_namespace: str = "octo"
    instance_prefix: str | None = None
    communication_controller_uri: str | None = None
    #: Projected instead of ``communication_controller_uri`` when set.
    workload_communication_controller_uri: str | None = None
    reporting_service_uri: str | None = None
    auth_uri: str | None = None
    image_registry: str | None = None
    additional_valid_issuers: tuple[str, ...] = ()
    cluster_dependencies: ClusterDependencies = field(default_factory=ClusterDependencies)
    ingress: IngressDefaults = field(default_factory=IngressDefaults)
    broker_password: str | None = field(default=None, repr=False)
    root_ca_certificate: str | None = None
    cluster_secrets: ClusterSecrets = field(default_factory=ClusterSecrets)


@dataclass(frozen=True)
class RenderedValues:
    """The three values documents (in precedence order) and the per-release Secret's contents."""

    release: str
    secret_name: str
    context_yaml: str
    base_yaml: str
    overrides_yaml: str
    #: Secret data key -> plaintext value. Empty: the per-release Secret should not exist.
    secret_data: Mapping[str, str] = field(repr=False)

    @property
    def documents(self) -> tuple[str, str, str]:
        """Context, base and overrides texts, lowest precedence first (empty strings included)."""
        return (self.context_yaml, self.base_yaml, self.overrides_yaml)

    def files(self) -> list[tuple[str, str]]:
        """``(file name, text)`` for each non-empty document, in the order to pass them as ``-f``."""
        named = zip((CONTEXT_FILE, BASE_FILE, OVERRIDES_FILE), self.documents, strict=True)
        return [(name, text) for name, text in named if text]


def render_values(dto: WorkloadDeployedDto, context: OperatorContext) -> RenderedValues:
    """Build all values for deploying ``dto``.

    Raises :class:`ValuesError` for unusable override paths and
    :class:`~.naming.NamingError` (also a ``ValueError``) for blank tenant or workload ids.
    """
    release = release_name(dto.tenant_id, dto.workload_rt_id)
    secret_name = release_secret_name(release)
    overrides, secret_data = build_overrides(
        [*injected_overrides(dto, context), *dto.values], secret_name, hibernated=dto.hibernated
    )
    return RenderedValues(
        release=release,
        secret_name=secret_name,
        context_yaml=dump_quoted(build_context(dto, context)),
        base_yaml=dto.values_yaml if dto.values_yaml.strip() else "",
        overrides_yaml=dump_quoted(overrides),
        secret_data=secret_data,
    )


def secret_values(dto: WorkloadDeployedDto, context: OperatorContext) -> frozenset[str]:
    """Every secret string this deploy knows of, for :func:`~communication_operator.redaction.redact`
    (empty ones left out).

    Includes the repository password and all configured cluster secrets whether or not this workload
    receives them.
    """
    candidates = [
        dto.repository_password,
        context.broker_password,
        context.cluster_secrets.mongodb_user_password,
        context.cluster_secrets.mongodb_admin_password,
        context.cluster_secrets.stream_data_password,
        *(entry.value for entry in dto.values if entry.is_secret),
    ]
    return frozenset(value for value in candidates if value)


def build_context(dto: WorkloadDeployedDto, context: OperatorContext) -> dict[str, Any]:
    """The ``values-context.yaml`` mapping, as upstream's ``WorkloadContextValuesBuilder``."""
    root: dict[str, Any] = {}
    _put_if_set(root, "tenantId", dto.tenant_id)
    _put_if_set(root, "adapterRtId", dto.workload_rt_id)  # chart key is historical, also for applications
    _put_if_set(root, "instancePrefix", context.instance_prefix)
    _put_if_set(
        root,
        "communicationControllerServiceUri",
        context.workload_communication_controller_uri
        if _is_set(context.workload_communication_controller_uri)
        else context.communication_controller_uri,
    )
    _put_if_set(root, "reportingServiceUri", context.reporting_service_uri)
    _put_if_set(root, "authUri", context.auth_uri)
    issuers = [issuer for issuer in context.additional_valid_issuers if _is_set(issuer)]
    if issuers:
        root["additionalValidIssuers"] = issuers
    if _is_set(context.image_registry):
        root["image"] = {"privateRegistry": context.image_registry}

    deps = context.cluster_dependencies
    dependencies: dict[str, Any] = {}
    _put_if_set(dependencies, "mongodbHost", deps.mongodb_host)
    _put_if_set(dependencies, "mongodbReplicaSet", deps.mongodb_replica_set)
    _put_if_set(dependencies, "rabbitMqHost", deps.rabbit_mq_host)
    _put_if_set(dependencies, "rabbitMqUser", deps.rabbit_mq_user)
    _put_if_set(dependencies, "streamDataHost", deps.stream_data_host)
    _put_if_set(dependencies, "streamDataUser", deps.stream_data_user)
    _put_if_set(dependencies, "systemDatabaseName", deps.system_database_name)
    _put_if_set(dependencies, "streamDataSchemaInstancePrefix", deps.stream_data_schema_instance_prefix)
    if dependencies:
        root["clusterDependencies"] = dependencies

    public = dto.ingress_enabled and _is_set(dto.hostname)
    ingress: dict[str, Any] = {}
    if public:
        ingress["enabled"] = True
    _put_if_set(ingress, "className", context.ingress.class_name)
    if context.ingress.tls is not None:
        ingress["tls"] = context.ingress.tls
    annotations: dict[str, str] = {}
    _put_if_set(annotations, "cert-manager.io/cluster-issuer", context.ingress.cluster_issuer)
    for name, value in context.ingress.annotations:
        if _is_set(name) and _is_set(value):
            annotations[name] = value
    if annotations:
        ingress["annotations"] = annotations
    if ingress:
        root["ingress"] = ingress
    if public:
        root["publicUri"] = f"https://{dto.hostname}"
    return root


def injected_overrides(dto: WorkloadDeployedDto, context: OperatorContext) -> list[ValueOverrideDto]:
    """The operator's entries, placed before the DTO's so that the workload's own overrides win."""
    injected: list[ValueOverrideDto] = []
    if context.broker_password:
        injected.append(_override(PATH_BROKER_PASSWORD, context.broker_password, secret=True))
    if context.root_ca_certificate:
        injected.append(_override(PATH_ROOT_CA, context.root_ca_certificate, secret=False))
    # An adapter pool serves every tenant of the platform: never the cluster's data-store credentials.
    if dto.receives_cluster_secrets and dto.workload_type is not WorkloadType.ADAPTER_POOL:
        secrets = context.cluster_secrets
        for path, value in (
            (PATH_DATABASE_USER, secrets.mongodb_user_password),
            (PATH_DATABASE_ADMIN, secrets.mongodb_admin_password),
            (PATH_STREAM_DATA_PASSWORD, secrets.stream_data_password),
        ):
            if value:
                injected.append(_override(path, value, secret=True))
    return injected


def build_overrides(
    entries: Iterable[ValueOverrideDto], secret_name: str, *, hibernated: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``values-overrides.yaml`` mapping and the Secret data for ``entries`` (later entries win)."""
    effective: dict[tuple[str, ...], ValueOverrideDto] = {}
    for entry in entries:
        if not entry.path.strip():
            continue
        segments = split_path(entry.path)
        effective.pop(segments, None)  # re-insert: the winning entry takes the later position
        effective[segments] = entry
    _check_no_prefix_conflicts(effective)

    root: dict[str, Any] = {}
    secret_data: dict[str, str] = {}
    for segments, entry in effective.items():
        value: Any = entry.value
        if entry.is_secret:
            key = secret_key_for(entry.path)
            if key in secret_data:
                raise ValuesError(f"override paths map to the same Secret key {key!r}; rename one of them")
            secret_data[key] = entry.value
            value = {"valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
        node = root
        for segment in segments[:-1]:
            node = node.setdefault(segment, {})
        node[segments[-1]] = value
    if hibernated:
        root["replicaCount"] = 0
    return root, secret_data


def split_path(path: str) -> tuple[str, ...]:
    """Dotted override path -> key segments; ``\\.`` is a literal dot, ``\\\\`` a literal backslash."""
    segments: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(path):
        char = path[index]
        following = path[index + 1] if index + 1 < len(path) else ""
        if char == "\\" and following in (".", "\\"):
            current.append(following)
            index += 2
            continue
        if char == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    segments.append("".join(current))
    if any(segment == "" for segment in segments):
        raise ValuesError(f"override path {path!r} has an empty segment (leading, trailing or doubled '.')")
    return tuple(segments)


def secret_key_for(path: str) -> str:
    """The per-release Secret's data key for a secret override at ``path``."""
    if _SECRET_KEY.fullmatch(path) and len(path) <= _SECRET_KEY_MAX_LENGTH:
        return path
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:10]
    cleaned = re.sub(r"[^-._a-zA-Z0-9]", "_", path)[: _SECRET_KEY_MAX_LENGTH - len(digest) - 1]
    return f"{cleaned}-{digest}"


class _QuotingDumper(yaml.SafeDumper):
    """Writes every string (keys included) double-quoted, never uses anchors, never folds lines."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_quoted_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_QuotingDumper.add_representer(str, _represent_quoted_str)


def dump_quoted(data: Mapping[str, Any]) -> str:
    """YAML for ``data`` with every string scalar and key double-quoted; ``""`` for an empty mapping."""
    if not data:
        return ""
    return yaml.dump(
        dict(data),
        Dumper=_QuotingDumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=2**31 - 1,
    )


def _check_no_prefix_conflicts(effective: Mapping[tuple[str, ...], ValueOverrideDto]) -> None:
    by_segments = {segments: entry.path for segments, entry in effective.items()}
    for segments, path in by_segments.items():
        for length in range(1, len(segments)):
            parent = by_segments.get(segments[:length])
            if parent is not None:
                raise ValuesError(
                    f"override paths {parent!r} and {path!r} conflict: {parent!r} cannot be both a value "
                    "and a map"
                )


def _override(path: str, value: str, *, secret: bool) -> ValueOverrideDto:
    return ValueOverrideDto(path=path, value=value, is_secret=secret)


def _is_set(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def _put_if_set(target: dict[str, Any], key: str, value: str | None) -> None:
    if _is_set(value):
        target[key] = value
