"""The kopf handlers hand kopf's views of a CommunicationPool (spec, meta, status) to the pool service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf
import pytest

from communication_operator.handlers import context_of, register_pool
from communication_operator.metrics import OperatorMetrics
from communication_operator.pools import CommunicationPoolSpec, PoolRef, PoolRegistry
from communication_operator.runtime import Runtime

POOL_RT_ID = "65f0c0ffee0000000000aaaa"


@dataclass
class RecordingRegistration:
    calls: list[tuple[PoolRef, CommunicationPoolSpec, int | None, dict[str, Any]]] = field(
        default_factory=list
    )

    async def ensure_registered(
        self,
        ref: PoolRef,
        spec: CommunicationPoolSpec,
        *,
        generation: int | None = None,
        current_status: Mapping[str, Any] | None = None,
    ) -> None:
        self.calls.append((ref, spec, generation, dict(current_status or {})))


def runtime_with(registration: RecordingRegistration) -> Runtime:
    return Runtime(
        settings=cast(Any, None),
        kube=cast(Any, None),
        objects=cast(Any, None),
        hub=cast(Any, None),
        registry=PoolRegistry(),
        status=cast(Any, None),
        registration=cast(Any, registration),
        provisioner=None,
        metrics=OperatorMetrics(),
    )


def pool_body(spec: dict[str, Any], status: dict[str, Any] | None = None) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "octo-mesh.meshmakers.io/v1alpha1",
            "kind": "CommunicationPool",
            "metadata": {"name": "acme-pool", "namespace": "octo", "uid": "uid-1", "generation": 3},
            "spec": spec,
            "status": status or {},
        }
    )


async def test_register_pool_passes_kopfs_views_to_the_registration() -> None:
    registration = RecordingRegistration()
    body = pool_body({"tenantId": "acme", "poolRtId": POOL_RT_ID}, {"phase": "Pending"})
    await register_pool(
        spec=body.spec,
        status=body.status,
        meta=body.meta,
        name="acme-pool",
        namespace="octo",
        uid="uid-1",
        memo=kopf.Memo(context=runtime_with(registration)),
    )
    ((ref, spec, generation, status),) = registration.calls
    assert ref == PoolRef("octo", "acme-pool", "uid-1")
    assert (spec.tenant_id, spec.pool_rt_id) == ("acme", POOL_RT_ID)
    assert generation == 3
    assert status == {"phase": "Pending"}


async def test_an_invalid_spec_is_a_permanent_error_naming_the_field() -> None:
    registration = RecordingRegistration()
    body = pool_body({"tenantId": "acme", "poolRtId": "not-an-object-id"})
    with pytest.raises(kopf.PermanentError, match=r"^invalid CommunicationPool: spec\.poolRtId: "):
        await register_pool(
            spec=body.spec,
            status=body.status,
            meta=body.meta,
            name="acme-pool",
            namespace="octo",
            uid="uid-1",
            memo=kopf.Memo(context=runtime_with(registration)),
        )
    assert registration.calls == []


def test_a_memo_without_the_runtime_is_a_permanent_error() -> None:
    with pytest.raises(kopf.PermanentError, match="runtime is missing"):
        context_of(kopf.Memo())
