"""Names and labels of the objects derived from a pool (octo-spec §3.2 and §4.5)."""

from __future__ import annotations

import re

from communication_operator.pools.model import (
    LABEL_MANAGED_BY,
    LABEL_POOL_RT_ID,
    LABEL_TENANT,
    MANAGED_BY,
    PoolKey,
)

DNS_NAME_MAX = 53  # helm's release-name limit; upstream uses it for every derived name
LABEL_VALUE_MAX = 63
BROKER_SECRET_SUFFIX = "-octo-mesh-connection"


def dns_name(*parts: str) -> str:
    """Upstream ``DnsName``: join with ``-``, lower-case, other characters to ``-``, collapse, trim, cut."""
    joined = "-".join(parts).lower()
    name = re.sub(r"[^a-z0-9]", "-", joined)
    name = re.sub(r"-{2,}", "-", name).strip("-")
    name = name[:DNS_NAME_MAX].rstrip("-")
    if not name:
        raise ValueError(f"cannot build a DNS name from {parts!r}: nothing usable left")
    return name


def label_value(value: str) -> str:
    """Upstream ``LabelValue``: keep ``[A-Za-z0-9-_.]``, others to ``-``, trim ``-_.``, max 63."""
    cleaned = re.sub(r"[^A-Za-z0-9\-_.]", "-", value).strip("-_.")
    cleaned = cleaned[:LABEL_VALUE_MAX].rstrip("-_.")
    return cleaned or "unknown"


def pool_resource_name(key: PoolKey) -> str:
    """Name of the CommunicationPool that central mode creates for a deployed pool."""
    return dns_name(key.tenant_id, key.pool_rt_id)


def broker_secret_name(resource_name: str) -> str:
    return f"{resource_name}{BROKER_SECRET_SUFFIX}"


def pool_labels(key: PoolKey) -> dict[str, str]:
    return {
        LABEL_TENANT: label_value(key.tenant_id),
        LABEL_POOL_RT_ID: key.pool_rt_id,
        LABEL_MANAGED_BY: MANAGED_BY,
    }
