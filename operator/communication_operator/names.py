"""Kubernetes names and labels derived from tenant, pool and workload ids (octo-spec §3.2, §4.5).

A leaf module (it imports nothing of ours), used by the pool and the workload services alike, so a
name or label has exactly one rule and one error.

Upstream rules, kept so that objects created by the .NET operator are found again:

* :func:`dns_name` — join with ``-``, lowercase, every character outside ``[a-z0-9]`` becomes ``-``,
  runs of ``-`` collapse, ``-`` trimmed, cut to 53 and trailing ``-`` trimmed; nothing left is an error.
* :func:`label_value` — keep ``[A-Za-z0-9-_.]``, others become ``-``, trim ``-_.`` at both ends,
  ``"unknown"`` when empty, at most 63 characters. (Upstream keeps any Unicode letter, which the
  apiserver rejects; here only ASCII letters and digits are kept.)

Where upstream truncates, :func:`release_name` and :func:`pool_cr_name` do not: a name that fits is
the upstream name unchanged, a name that would be cut keeps a readable prefix and ends in a hash of
the full original ids, so two workloads (or two pools) of one long tenant id never share a name. Both
components must keep at least one letter or digit: a tenant id such as ``***`` is refused instead of
silently naming the object after the other id alone. Ids that differ only in characters the
sanitiser replaces (``a_b`` and ``a.b``) still map to one name, as upstream; tenant ids are
identifiers, not free text, and changing those names would orphan upstream's objects.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

#: Helm's release-name limit; upstream applies it to every derived DNS name.
DNS_NAME_MAX_LENGTH = 53
#: Kubernetes label values and DNS labels (RFC 1123) are at most 63 characters.
LABEL_VALUE_MAX_LENGTH = 63
SECRET_NAME_MAX_LENGTH = 63

_LABEL_PREFIX = "octo-mesh.meshmakers.io"
LABEL_TENANT = f"{_LABEL_PREFIX}/tenant"
LABEL_POOL_RT_ID = f"{_LABEL_PREFIX}/pool-rt-id"
LABEL_WORKLOAD_RT_ID = f"{_LABEL_PREFIX}/workload-rt-id"
LABEL_MANAGED_BY = f"{_LABEL_PREFIX}/managed-by"
MANAGED_BY_VALUE = "communication-operator"
ANNOTATION_WORKLOAD_NAME = f"{_LABEL_PREFIX}/workload-name"
#: Set by charts on everything they render; selects the pods of a release.
HELM_INSTANCE_LABEL = "app.kubernetes.io/instance"

RELEASE_SECRET_SUFFIX = "-octo-secrets"
BROKER_SECRET_SUFFIX = "-octo-mesh-connection"

#: Error texts (the workload service reports them to the controller as "Invalid workload: ...").
BLANK_COMPONENT = "{component} is blank; cannot name the {what}"
EMPTY_COMPONENT = "{component} {value!r} has no letters or digits; cannot name the {what}"
BLANK_NAME = "a Kubernetes name component must not be blank"
NOTHING_USABLE = "cannot build a Kubernetes name from {value!r}: nothing usable left (no letters or digits)"

#: Hex digits of SHA-256 appended when a name has to be shortened (40 bits).
_HASH_LENGTH = 10
#: A shortened name keeps at least this much of the tenant id, so it stays recognisable.
_MIN_TENANT_PREFIX = 8

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NOT_DNS_CHAR = re.compile(r"[^A-Za-z0-9]")
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_DASHES = re.compile(r"-{2,}")


class NamingError(ValueError):
    """An id cannot be turned into a Kubernetes name (blank, or nothing usable left)."""


def dns_name(*parts: str, max_length: int = DNS_NAME_MAX_LENGTH) -> str:
    """Upstream ``K8sNaming.DnsName``: the parts joined with ``-`` and made an RFC 1123 label.

    Truncates to ``max_length``; use :func:`release_name` or :func:`pool_cr_name` where truncation
    must not collide.
    """
    joined = "-".join(parts)
    if not joined.strip():
        raise NamingError(BLANK_NAME)
    name = _sanitise_dns(joined)
    if not name:
        raise NamingError(NOTHING_USABLE.format(value=joined))
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
    """Helm release ``{tenantId}-{workloadRtId}``: DNS-safe, at most 53 characters, never cut blindly."""
    return _compound_name(("tenantId", tenant_id), ("workloadRtId", workload_rt_id), "helm release")


def release_secret_name(release: str) -> str:
    """The per-release Secret ``{release}-octo-secrets``, shortened with a hash to fit 63 characters."""
    room = SECRET_NAME_MAX_LENGTH - len(RELEASE_SECRET_SUFFIX)
    if len(release) <= room:
        return f"{release}{RELEASE_SECRET_SUFFIX}"
    digest = _short_hash(release)
    return f"{_cut(release, room - len(digest) - 1)}-{digest}{RELEASE_SECRET_SUFFIX}"


def pool_cr_name(tenant_id: str, pool_rt_id: str) -> str:
    """CommunicationPool name ``{tenantId}-{poolRtId}``: upstream's name when it fits, else hashed.

    Pool rt ids are 24 hex characters, so only tenant ids longer than 28 characters change: upstream
    cut those at 53 and gave two pools of the tenant one name.
    """
    return _compound_name(("tenantId", tenant_id), ("poolRtId", pool_rt_id), "CommunicationPool")


def broker_secret_name(pool_cr: str) -> str:
    """The broker connection Secret ``{crName}-octo-mesh-connection`` (at most 53 + 21 characters)."""
    return f"{pool_cr}{BROKER_SECRET_SUFFIX}"


def pool_labels(tenant_id: str, pool_rt_id: str) -> dict[str, str]:
    """Labels on a pool's CommunicationPool and broker Secret (octo-spec §3.2)."""
    return {
        LABEL_TENANT: label_value(tenant_id),
        LABEL_POOL_RT_ID: pool_rt_id,
        LABEL_MANAGED_BY: MANAGED_BY_VALUE,
    }


def release_labels(tenant_id: str, pool_rt_id: str, workload_rt_id: str) -> dict[str, str]:
    """Labels identifying tenant, pool and workload; for helm ``--labels`` and the per-release Secret."""
    return {
        LABEL_TENANT: label_value(tenant_id),
        LABEL_POOL_RT_ID: label_value(pool_rt_id),
        LABEL_WORKLOAD_RT_ID: label_value(workload_rt_id),
        LABEL_MANAGED_BY: MANAGED_BY_VALUE,
    }


def is_managed(labels: object) -> bool:
    """True when an object's labels say this operator (or upstream's) created it."""
    return isinstance(labels, Mapping) and labels.get(LABEL_MANAGED_BY) == MANAGED_BY_VALUE


def _compound_name(tenant: tuple[str, str], rt_id: tuple[str, str], what: str) -> str:
    """``{tenant}-{rt id}`` as :func:`dns_name` makes it when that fits; otherwise prefix + rt id + hash.

    The hash covers both original ids, so distinct pairs keep distinct names; the rt id is shortened
    only when it alone leaves no room for a tenant prefix and the hash.
    """
    (tenant_label, tenant_id), (rt_label, rt_raw) = tenant, rt_id
    for label, value in (tenant, rt_id):
        if not value.strip():
            raise NamingError(BLANK_COMPONENT.format(component=label, what=what))
    tenant_part, rt_part = _sanitise_dns(tenant_id), _sanitise_dns(rt_raw)
    for label, value, part in ((tenant_label, tenant_id, tenant_part), (rt_label, rt_raw, rt_part)):
        if not part:
            raise NamingError(EMPTY_COMPONENT.format(component=label, value=value, what=what))
    full = f"{tenant_part}-{rt_part}"
    if len(full) <= DNS_NAME_MAX_LENGTH:
        return full
    digest = _short_hash(f"{tenant_id}\x00{rt_raw}")
    room = DNS_NAME_MAX_LENGTH - len(digest) - 1  # for "{tenant}-{rt}" before "-{hash}"
    tenant_room = max(room - len(rt_part) - 1, min(_MIN_TENANT_PREFIX, len(tenant_part)))
    tenant_cut = _cut(tenant_part, tenant_room)
    rt_cut = _cut(rt_part, room - len(tenant_cut) - 1)
    return f"{tenant_cut}-{rt_cut}-{digest}" if rt_cut else f"{tenant_cut}-{digest}"


def _sanitise_dns(value: str) -> str:
    # Replace before lowercasing: str.lower() can turn one non-ASCII character into two.
    return _DASHES.sub("-", _NOT_DNS_CHAR.sub("-", value).lower()).strip("-")


def _cut(name: str, length: int) -> str:
    return name[: max(length, 0)].rstrip("-")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
