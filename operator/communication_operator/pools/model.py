"""The CommunicationPool resource: identifiers, the validated spec, and pool identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from communication_operator.logs import log_context

GROUP = "octo-mesh.meshmakers.io"
VERSION = "v1alpha1"
PLURAL = "communicationpools"
KIND = "CommunicationPool"
API_VERSION = f"{GROUP}/{VERSION}"

# Our own finalizer (not kopf's default marker), so the delete handler runs even for CRs deleted
# while the operator was down.
FINALIZER = f"{GROUP}/communication-operator"

POOL_RT_ID_PATTERN = r"^[a-f0-9]{24}$"


@dataclass(frozen=True, order=True)
class PoolKey:
    """A pool's identity at the controller: ``(tenantId, poolRtId)``."""

    tenant_id: str
    pool_rt_id: str

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.pool_rt_id}"


@dataclass(frozen=True, order=True)
class PoolRef:
    """One pool resource. ``uid`` tells a re-created object of the same name apart; ``kind`` is
    ``CommunicationPool`` or ``DeploymentSite`` (:mod:`communication_operator.pools.kinds`)."""

    namespace: str
    name: str
    uid: str = ""
    kind: str = KIND

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def pool_context(key: PoolKey, ref: PoolRef | None = None) -> dict[str, str]:
    """``extra=`` for a log line about a pool (and the CommunicationPool object, if one is meant)."""
    if ref is None:
        return log_context(tenant=key.tenant_id, pool=key.pool_rt_id)
    return log_context(tenant=key.tenant_id, pool=key.pool_rt_id, namespace=ref.namespace, name=ref.name)


class CommunicationPoolSpec(BaseModel):
    """``spec`` of a CommunicationPool; the CRD schema enforces the same rules on the server."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    tenant_id: str = Field(alias="tenantId", min_length=1)
    pool_rt_id: str = Field(alias="poolRtId", pattern=POOL_RT_ID_PATTERN)

    @property
    def key(self) -> PoolKey:
        return PoolKey(self.tenant_id, self.pool_rt_id)

    @classmethod
    def from_body(cls, spec: Any) -> CommunicationPoolSpec:
        return cls.model_validate(dict(spec or {}))
