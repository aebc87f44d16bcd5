"""Derived names follow upstream DnsName/LabelValue; deployed-state reports fit the message limit."""

from __future__ import annotations

import json

import pytest

from communication_operator.contracts import OperatorDeployedPoolReportDto
from communication_operator.names import dns_name, label_value
from communication_operator.pools import CommunicationPoolSpec, PoolKey
from communication_operator.pools.naming import (
    broker_secret_name,
    pool_labels,
    pool_resource_name,
)
from communication_operator.pools.reports import build_reports, chunk_reports


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("acme", "65f0c0ffee0000000000aaaa"), "acme-65f0c0ffee0000000000aaaa"),
        (("Acme Corp", "X_1"), "acme-corp-x-1"),
        (("--a--", "--b--"), "a-b"),
        (("t" * 60, "65f0c0ffee0000000000aaaa"), "t" * 53),
        (("t" * 52 + "_", "x"), "t" * 52),
    ],
)
def test_dns_name(parts: tuple[str, ...], expected: str) -> None:
    assert dns_name(*parts) == expected


def test_dns_name_rejects_blank() -> None:
    with pytest.raises(ValueError, match="nothing usable"):
        dns_name("__", "--")


def test_label_value() -> None:
    assert label_value("Acme Corp/EU") == "Acme-Corp-EU"
    assert label_value("._-") == "unknown"
    assert len(label_value("x" * 100)) == 63


def test_pool_objects_names_and_labels() -> None:
    key = PoolKey("acme", "65f0c0ffee0000000000aaaa")
    name = pool_resource_name(key)
    assert name == "acme-65f0c0ffee0000000000aaaa"
    assert broker_secret_name(name) == "acme-65f0c0ffee0000000000aaaa-octo-mesh-connection"
    assert pool_labels(key) == {
        "octo-mesh.meshmakers.io/tenant": "acme",
        "octo-mesh.meshmakers.io/pool-rt-id": "65f0c0ffee0000000000aaaa",
        "octo-mesh.meshmakers.io/managed-by": "communication-operator",
    }


def test_spec_validation_matches_the_crd() -> None:
    spec = CommunicationPoolSpec.from_body(
        {"tenantId": "acme", "poolRtId": "65f0c0ffee0000000000aaaa", "x": 1}
    )
    assert spec.key == PoolKey("acme", "65f0c0ffee0000000000aaaa")
    with pytest.raises(ValueError, match="poolRtId"):
        CommunicationPoolSpec.from_body({"tenantId": "acme", "poolRtId": "NOT-AN-ID"})
    with pytest.raises(ValueError, match="tenantId"):
        CommunicationPoolSpec.from_body({"tenantId": "", "poolRtId": "65f0c0ffee0000000000aaaa"})


def _invocation_bytes(chunk: list[OperatorDeployedPoolReportDto]) -> int:
    message = {
        "type": 1,
        "invocationId": "1234567",
        "target": "ReportDeployedStateAsync",
        "arguments": [[r.to_wire() for r in chunk]],
    }
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()) + 1


def test_chunks_stay_under_the_limit_and_keep_everything() -> None:
    keys = [PoolKey(f"tenant-{i % 7}", f"{i:024x}") for i in range(500)]
    workloads = {(k.tenant_id, k.pool_rt_id): [f"{j:024x}" for j in range(i % 5)] for i, k in enumerate(keys)}
    reports = build_reports(keys, workloads)
    chunks = chunk_reports(reports, 4096)
    assert len(chunks) > 1
    assert all(_invocation_bytes(c) <= 4096 for c in chunks)
    assert [r for c in chunks for r in c] == reports


def test_a_pool_with_too_many_workloads_is_split_across_reports() -> None:
    key = PoolKey("acme", "65f0c0ffee0000000000aaaa")
    many = [f"{j:024x}" for j in range(300)]
    chunks = chunk_reports(build_reports([key], {("acme", key.pool_rt_id): many}), 2048)
    parts = [r for c in chunks for r in c]
    assert len(parts) > 1
    assert all(r.pool_rt_id == key.pool_rt_id for r in parts)
    assert sorted(w for r in parts for w in r.workload_rt_ids) == many
    assert all(_invocation_bytes(c) <= 2048 for c in chunks)
