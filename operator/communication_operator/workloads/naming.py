"""Kubernetes names and labels derived from tenant, pool and workload ids (octo-spec §3.2, §4.5).

Upstream rules, kept so that releases and objects created by the .NET operator are found again:

* :func:`dns_name` — join with ``-``, lowercase, every character outside ``[a-z0-9]`` becomes ``-``,
  runs of ``-`` collapse, ``-`` trimmed, cut to 53 and trailing ``-`` trimmed; blank is an error.
* :func:`label_value` — keep ``[A-Za-z0-9-_.]``, others become ``-``, trim ``-_.`` at both ends,
  ``"unknown"`` when empty, at most 63 characters. (Upstream keeps any Unicode letter, which the
  apiserver rejects; here only ASCII letters and digits are kept.)
* :func:`pool_cr_name` — ``dns_name(tenantId + "-" + poolRtId)``, exactly as upstream.

Where upstream truncates, :func:`release_name` does not: a name that fits is the upstream name
unchanged, a name that would be cut keeps a readable prefix and ends in a hash of the full original
ids, so two workloads of one long tenant id never share a release. Ids that differ only in
characters the sanitiser replaces (``a_b`` and ``a.b``) still map to one name, as upstream; tenant
ids are identifiers, not free text, and changing those names would orphan upstream's releases.
"""

from __future__ import annotations

import hashlib
import re

from communication_operator.contracts import WorkloadDeployedDto

#: Helm's release-name limit; upstream applies it to every derived DNS name.
DNS_NAME_MAX_LENGTH = 53
#: Kubernetes label values and DNS labels (RFC 1123) are at most 63 characters.
LABEL_VALUE_MAX_LENGTH = 63
SECRET_NAME_MAX_LENGTH = 63

LABEL_TENANT = "octo-mesh.meshmakers.io/tenant"
LABEL_POOL_RT_ID = "octo-mesh.meshmakers.io/pool-rt-id"
LABEL_WORKLOAD_RT_ID = "octo-mesh.meshmakers.io/workload-rt-id"
LABEL_MANAGED_BY = "octo-mesh.meshmakers.io/managed-by"
MANAGED_BY_VALUE = "communication-operator"
ANNOTATION_WORKLOAD_NAME = "octo-mesh.meshmakers.io/workload-name"
#: Set by charts on everything they render; selects the pods of a release.
HELM_INSTANCE_LABEL = "app.kubernetes.io/instance"

RELEASE_SECRET_SUFFIX = "-octo-secrets"

#: Hex digits of SHA-256 appended when a name has to be shortened (40 bits).
_HASH_LENGTH = 10
#: A shortened release name keeps at least this much of the tenant id, so it stays recognisable.
_MIN_TENANT_PREFIX = 8

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NOT_DNS_CHAR = re.compile(r"[^A-Za-z0-9]")
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_DASHES = re.compile(r"-{2,}")


class NamingError(ValueError):
    """An id cannot be turned into a Kubernetes name (blank, or nothing usable left)."""


def dns_name(*parts: str, max_length: int = DNS_NAME_MAX_LENGTH) -> str:
    """Upstream ``K8sNaming.DnsName``: the parts joined with ``-`` and made an RFC 1123 label.

    Truncates to ``max_length``; use :func:`release_name` where truncation must not collide.
    """
    joined = "-".join(parts)
    if not joined.strip():
        raise NamingError("a Kubernetes name component must not be blank")
    name = _sanitise_dns(joined)
    if not name:
        raise NamingError(f"Kubernetes name component {joined!r} has no letters or digits")
    return _cut(name, max_length)


def label_value(value: str) -> str:
    """Upstream ``K8sNaming.LabelValue`` (ASCII only): a valid label value, ``"unknown"`` if empty."""
    trimmed = _NOT_LABEL_CHAR.sub("-", value).strip("-_.")
    if not trimmed:
        return "unknown"
    return trimmed[:LABEL_VALUE_MAX_LENGTH].rstrip("-_.")


def is_dns_label(name: str, max_length: int = LABEL_VALUE_MAX_LENGTH) -> bool:
    """True for a valid RFC 1123 label of at most ``max_length`` characters."""
    return len(name) <= max_length and _DNS_LABEL.fullmatch(name) is not None


def release_name(tenant_id: str, workload_rt_id: str) -> str:
    """Helm release ``{tenantId}-{workloadRtId}``: DNS-safe, at most 53 characters, never truncated blindly.

    If the upstream name (:func:`dns_name`) fits without cutting, it is returned unchanged. Otherwise
    the result is ``{tenant prefix}-{workload rt id}-{hash}`` where the hash covers both original ids,
    so distinct (tenant, workload) pairs keep distinct names; the rt id is shortened only when it alone
    leaves no room for the prefix and the hash.
    """
    if not tenant_id.strip():
        raise NamingError("tenantId is blank; cannot name the helm release")
    if not workload_rt_id.strip():
        raise NamingError("workloadRtId is blank; cannot name the helm release")
    full = _sanitise_dns(f"{tenant_id}-{workload_rt_id}")
    if not full:
        raise NamingError(
            f"tenantId {tenant_id!r} and workloadRtId {workload_rt_id!r} have no letters or digits"
        )
    if len(full) <= DNS_NAME_MAX_LENGTH:
        return full
    digest = _short_hash(f"{tenant_id}\x00{workload_rt_id}")
    tenant = _sanitise_dns(tenant_id)
    rt_id = _sanitise_dns(workload_rt_id)
    room = DNS_NAME_MAX_LENGTH - len(digest) - 1  # for "{tenant}-{rt}" or "{rt}" before "-{hash}"
    if not tenant:
        return f"{_cut(rt_id, room)}-{digest}"
    if not rt_id:
        return f"{_cut(tenant, room)}-{digest}"
    tenant_room = max(room - len(rt_id) - 1, min(_MIN_TENANT_PREFIX, len(tenant)))
    tenant_part = _cut(tenant, tenant_room)
    rt_part = _cut(rt_id, room - len(tenant_part) - 1)
    return f"{tenant_part}-{rt_part}-{digest}" if rt_part else f"{tenant_part}-{digest}"


def release_secret_name(release: str) -> str:
    """The per-release Secret ``{release}-octo-secrets``, shortened with a hash to fit 63 characters."""
    room = SECRET_NAME_MAX_LENGTH - len(RELEASE_SECRET_SUFFIX)
    if len(release) <= room:
        return f"{release}{RELEASE_SECRET_SUFFIX}"
    digest = _short_hash(release)
    return f"{_cut(release, room - len(digest) - 1)}-{digest}{RELEASE_SECRET_SUFFIX}"


def pool_cr_name(tenant_id: str, pool_rt_id: str) -> str:
    """CommunicationPool CR name, upstream ``DnsName(tenantId + "-" + poolRtId)`` (truncates at 53).

    Kept identical to upstream so existing CRs are recognised. Pool rt ids are 24 hex characters, so
    only tenant ids longer than 28 characters lose part of the rt id.
    """
    return dns_name(f"{tenant_id}-{pool_rt_id}")


def release_labels(dto: WorkloadDeployedDto) -> dict[str, str]:
    """Labels identifying tenant, pool and workload; for helm ``--labels`` and the per-release Secret."""
    return {
        LABEL_TENANT: label_value(dto.tenant_id),
        LABEL_POOL_RT_ID: label_value(dto.pool_rt_id),
        LABEL_WORKLOAD_RT_ID: label_value(dto.workload_rt_id),
        LABEL_MANAGED_BY: MANAGED_BY_VALUE,
    }


def _sanitise_dns(value: str) -> str:
    # Replace before lowercasing: str.lower() can turn one non-ASCII character into two.
    return _DASHES.sub("-", _NOT_DNS_CHAR.sub("-", value).lower()).strip("-")


def _cut(name: str, length: int) -> str:
    return name[: max(length, 0)].rstrip("-")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
