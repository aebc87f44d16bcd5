"""The two custom resources that name a pool: ``CommunicationPool`` (pool era) and ``DeploymentSite``.

The DeploymentSite-era controller renamed "pool" to "deployment site" (octo-spec §0.3), and its
operator watches ``deploymentsites.octo-mesh.meshmakers.io`` (v1, spec ``{tenantId,
deploymentSiteRtId}``) instead of ``communicationpools`` (v1alpha1, spec ``{tenantId, poolRtId}``).
Both say the same thing ("this cluster runs pool X of tenant Y"), so one implementation serves both:
a :class:`PoolKind` holds what differs (API coordinates, the spec field and the identity label), and
the pool code reads a pool's identity through it. Which kind central mode creates follows the
generation of the controller (:func:`kind_for_contract`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from communication_operator import names
from communication_operator.contracts.profiles import Contract
from communication_operator.kube.objects import ObjectRef
from communication_operator.pools.model import GROUP, CommunicationPoolSpec, PoolKey, PoolRef

LABEL_DEPLOYMENT_SITE_RT_ID = f"{GROUP}/deployment-site-rt-id"

#: The message of :class:`InvalidSpec`: the kind and each problem, in the kind's own field names.
INVALID_SPEC = "invalid {kind}: {problems}"


class InvalidSpec(ValueError):
    """A pool resource whose spec cannot name a pool (the CRD schema normally rejects it first)."""


@dataclass(frozen=True)
class PoolKind:
    kind: str
    version: str
    plural: str
    singular: str
    rt_id_field: str  # the spec field holding the controller's runtime id of the pool
    rt_id_label: str  # the label carrying that id on the objects central mode creates
    crd_file: str  # in communication_operator/resources (and crds/, and the chart's files/crds/)
    group: str = GROUP

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def resource(self) -> tuple[str, str, str]:
        """``(group, version, plural)``, as kopf and the custom objects API take it."""
        return (self.group, self.version, self.plural)

    def spec_body(self, key: PoolKey) -> dict[str, str]:
        return {"tenantId": key.tenant_id, self.rt_id_field: key.pool_rt_id}

    def key_of(self, spec: Any) -> PoolKey | None:
        """The pool an object's spec names, or None if it names none (no validation of the id)."""
        if isinstance(spec, Mapping) and spec.get("tenantId") and spec.get(self.rt_id_field):
            return PoolKey(str(spec["tenantId"]), str(spec[self.rt_id_field]))
        return None

    def parse_spec(self, spec: Any) -> CommunicationPoolSpec:
        """The validated spec, whatever the kind; :class:`InvalidSpec` names fields as this kind does."""
        body = dict(spec or {}) if isinstance(spec, Mapping) else {}
        try:
            return CommunicationPoolSpec.model_validate(
                {"tenantId": body.get("tenantId"), "poolRtId": body.get(self.rt_id_field)}
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"spec.{'.'.join(self._field(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise InvalidSpec(INVALID_SPEC.format(kind=self.kind, problems=problems)) from None

    def labels(self, key: PoolKey) -> dict[str, str]:
        """Labels on the resource and broker Secret central mode creates for ``key``."""
        labels = names.pool_labels(key.tenant_id, key.pool_rt_id)
        rt_id = labels.pop(names.LABEL_POOL_RT_ID)
        labels[self.rt_id_label] = rt_id
        return labels

    def ref(self, namespace: str, name: str, uid: str = "") -> PoolRef:
        return PoolRef(namespace, name, uid, kind=self.kind)

    def object_ref(self, ref: PoolRef) -> ObjectRef:
        return ObjectRef(self.api_version, self.kind, ref.namespace, ref.name, ref.uid)

    def _field(self, part: object) -> str:
        return self.rt_id_field if part in ("poolRtId", "pool_rt_id") else str(part)


COMMUNICATION_POOL = PoolKind(
    kind="CommunicationPool",
    version="v1alpha1",
    plural="communicationpools",
    singular="communicationpool",
    rt_id_field="poolRtId",
    rt_id_label=names.LABEL_POOL_RT_ID,
    crd_file="communicationpool.yaml",
)
DEPLOYMENT_SITE = PoolKind(
    kind="DeploymentSite",
    version="v1",
    plural="deploymentsites",
    singular="deploymentsite",
    rt_id_field="deploymentSiteRtId",
    rt_id_label=LABEL_DEPLOYMENT_SITE_RT_ID,
    crd_file="deploymentsite.yaml",
)
#: Every kind the operator serves, the pool-era one first.
KINDS = (COMMUNICATION_POOL, DEPLOYMENT_SITE)

_BY_NAME = {kind.kind: kind for kind in KINDS}
_BY_PLURAL = {kind.plural: kind for kind in KINDS}
_BY_CONTRACT = {Contract.POOLS: COMMUNICATION_POOL, Contract.DEPLOYMENT_SITES: DEPLOYMENT_SITE}


def kind_named(kind: str) -> PoolKind:
    """The kind called ``kind`` (``CommunicationPool`` or ``DeploymentSite``)."""
    try:
        return _BY_NAME[kind]
    except KeyError:
        raise ValueError(f"not a pool kind: {kind!r}") from None


def kind_of_ref(ref: PoolRef) -> PoolKind:
    return kind_named(ref.kind)


def kind_of_plural(plural: str) -> PoolKind:
    try:
        return _BY_PLURAL[plural]
    except KeyError:
        raise ValueError(f"not a pool resource: {plural!r}") from None


def kind_for_contract(contract: Contract) -> PoolKind:
    """The kind a controller of this generation expects its operator to create (central mode)."""
    return _BY_CONTRACT[contract]
