"""Names and labels of the objects derived from a pool (octo-spec §3.2).

The rules live in :mod:`communication_operator.names`; these take a :class:`PoolKey`.
"""

from __future__ import annotations

from communication_operator import names
from communication_operator.names import broker_secret_name
from communication_operator.pools.model import PoolKey

__all__ = ["broker_secret_name", "pool_labels", "pool_resource_name"]


def pool_resource_name(key: PoolKey) -> str:
    """Name of the CommunicationPool that central mode creates for a deployed pool (collision-free)."""
    return names.pool_cr_name(key.tenant_id, key.pool_rt_id)


def pool_labels(key: PoolKey) -> dict[str, str]:
    return names.pool_labels(key.tenant_id, key.pool_rt_id)
