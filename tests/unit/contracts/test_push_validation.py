"""Workload pushes are validated beyond their shape (ids, workload type); a refusal keeps the readable ids."""

from __future__ import annotations

from typing import Any

import pytest

from communication_operator.contracts import (
    CLIENT_METHODS,
    ContractError,
    InvalidPush,
    PushIds,
    WorkloadDeployedDto,
    decode_arguments,
)
from communication_operator.contracts.validation import MAX_PROBLEMS

TENANT = "acme"
POOL = "65f0c0ffee0000000000aaaa"
WORKLOAD = "65f0c0ffee0000000000bbbb"


def push(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantId": TENANT,
        "poolRtId": POOL,
        "workloadName": "Mesh Adapter",
        "workloadRtId": WORKLOAD,
        "workloadType": 0,
        "repositoryUrl": "https://charts.example",
        "chartName": "adapter",
    }
    for name, value in fields.items():
        if value is ...:
            del body[name]
        else:
            body[name] = value
    return body


def refusal(method: str, body: Any) -> InvalidPush:
    with pytest.raises(InvalidPush) as excinfo:
        decode_arguments(method, [body], CLIENT_METHODS)
    return excinfo.value


def test_a_valid_push_decodes() -> None:
    (dto,) = decode_arguments("WorkloadDeployedAsync", [push()], CLIENT_METHODS)
    assert isinstance(dto, WorkloadDeployedDto)
    assert dto.workload_rt_id == WORKLOAD


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workloadRtId", WORKLOAD.upper()),
        ("workloadRtId", WORKLOAD[:23]),
        ("workloadRtId", WORKLOAD + "0"),
        ("workloadRtId", "../../etc"),
        ("workloadRtId", "65f0c0ffee0000000000bbb\n"),
        ("poolRtId", "../../etc/passwd00000000"),
        ("poolRtId", ""),
    ],
)
@pytest.mark.parametrize("method", ["WorkloadDeployedAsync", "WorkloadUndeployedAsync", "ScaleWorkloadAsync"])
def test_runtime_ids_must_be_24_lowercase_hex(method: str, field: str, value: str) -> None:
    failure = refusal(method, push(**{field: value}))
    assert failure.method == method
    assert any(problem.startswith(field) for problem in failure.problems), failure.problems
    assert "24 lowercase hexadecimal" in str(failure)
    assert isinstance(failure, ContractError)  # callers that only know ContractError still catch it


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        ("", "tenantId is blank"),
        ("   ", "tenantId is blank"),
        ("ac\nme", "tenantId 'ac\\nme' contains control characters"),
        ("ac\u202eme", "tenantId 'ac\\u202eme' contains control characters"),
        ("a" * 129, "tenantId is longer than 128 characters"),
        (..., "tenantId is missing"),
    ],
)
def test_tenant_ids_are_checked(tenant: Any, expected: str) -> None:
    failure = refusal("WorkloadDeployedAsync", push(tenantId=tenant))
    assert expected in failure.problems


def test_a_refusal_carries_the_ids_it_could_read() -> None:
    failure = refusal("WorkloadDeployedAsync", push(workloadRtId="ABC", workloadType=3))
    assert failure.ids == PushIds(TENANT, POOL, "ABC", "Mesh Adapter")
    assert failure.ids.readable
    assert failure.problems == (
        "workloadRtId 'ABC' is not a runtime id (24 lowercase hexadecimal characters)",
        "field 'workloadType': 3 is not a workload type this operator deploys "
        "(supported: 0 Adapter, 1 Application, 2 AdapterPool)",
    )


def test_a_type_newer_than_adapter_pool_is_refused_naming_the_type() -> None:
    failure = refusal("WorkloadDeployedAsync", push(workloadType=3))
    assert failure.ids.readable
    assert failure.problems == (
        "field 'workloadType': 3 is not a workload type this operator deploys "
        "(supported: 0 Adapter, 1 Application, 2 AdapterPool)",
    )


def test_an_unknown_type_is_named_too() -> None:
    failure = refusal("WorkloadDeployedAsync", push(workloadType=7))
    assert "field 'workloadType': 7 is not a workload type" in str(failure)


@pytest.mark.parametrize(
    "body",
    [push(tenantId=5), push(workloadRtId=None), push(tenantId="a" * 300), "not an object"],
    ids=["tenant-not-a-string", "workload-null", "tenant-huge", "not-an-object"],
)
def test_ids_that_cannot_be_read_are_not_readable(body: Any) -> None:
    assert not refusal("WorkloadDeployedAsync", body).ids.readable


def test_case_insensitive_names_are_read_as_the_controller_writes_them() -> None:
    body = {"TENANTID": TENANT, "PoolRtId": POOL, "workloadrtid": "x", "WorkloadName": "n"}
    assert refusal("WorkloadUndeployedAsync", body).ids == PushIds(TENANT, POOL, "x", "n")


def test_long_values_are_shown_cut_in_the_problem() -> None:
    failure = refusal("WorkloadDeployedAsync", push(workloadRtId="x" * 10_000))
    assert len(str(failure)) < 300
    assert "(10000 characters)" in str(failure)


def test_pool_pushes_are_not_held_to_workload_rules() -> None:
    assert decode_arguments("PoolUndeployedAsync", ["t", "p"], CLIENT_METHODS) == ["t", "p"]


def test_extra_arguments_still_leave_the_workload_readable() -> None:
    with pytest.raises(InvalidPush) as excinfo:
        decode_arguments("WorkloadDeployedAsync", [push(), "extra"], CLIENT_METHODS)
    assert excinfo.value.problems == ("expected 1 argument(s), got 2",)
    assert excinfo.value.ids == PushIds(TENANT, POOL, WORKLOAD, "Mesh Adapter")


def test_the_problems_of_a_huge_invalid_push_are_bounded_in_number_and_length() -> None:
    failure = refusal("WorkloadDeployedAsync", push(values=[{"path": 1, "value": 2}] * 1000))
    assert len(failure.problems) == MAX_PROBLEMS + 1
    assert failure.problems[0] == "field 'values.0.path': Input should be a valid string"
    assert failure.problems[-1] == f"and {2 * 1000 - MAX_PROBLEMS} more problems"
    assert len(str(failure)) < 100 * (MAX_PROBLEMS + 1)
