"""The DTOs read and write JSON exactly as the controller's System.Text.Json does."""

from __future__ import annotations

import json

import pytest

from communication_operator.contracts import (
    CLIENT_METHODS,
    SERVER_METHODS,
    ContractError,
    DeployedPoolDto,
    OperatorDeployedPoolReportDto,
    ValueOverrideDto,
    WorkloadDeployedDto,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
    WorkloadType,
    WorkloadUndeployedDto,
    decode_arguments,
    decode_result,
    encode_arguments,
)

# A push exactly as the controller writes it (octo-spec §1.4), plus a field a newer controller adds.
WORKLOAD_DEPLOYED_FRAME = """{"type":1,"target":"WorkloadDeployedAsync","arguments":[{
  "tenantId":"acme","poolRtId":"65f0c0ffee0000000000aaaa","workloadName":"Mesh Adapter",
  "workloadRtId":"65f0c0ffee0000000000bbbb","workloadType":0,
  "repositoryUrl":"https://meshmakers.github.io/charts","repositoryUsername":null,"repositoryPassword":null,
  "chartName":"octo-mesh-adapter","chartVersion":"","valuesYaml":"",
  "values":[{"path":"oauth.clientSecret","value":"s3cr3t","isSecret":true}],
  "receivesClusterSecrets":true,"ingressEnabled":false,"hostname":null,
  "isReconciliation":true,"someFutureField":{"nested":[1,2,3]}}]}"""


def test_workload_deployed_push_round_trips() -> None:
    frame = json.loads(WORKLOAD_DEPLOYED_FRAME)
    (dto,) = decode_arguments(frame["target"], frame["arguments"], CLIENT_METHODS)
    assert isinstance(dto, WorkloadDeployedDto)
    assert dto.workload_type is WorkloadType.ADAPTER
    assert dto.values == [ValueOverrideDto(path="oauth.clientSecret", value="s3cr3t", is_secret=True)]
    assert dto.is_reconciliation is True
    wire = dto.to_wire()
    original = frame["arguments"][0]
    del original["someFutureField"]
    assert wire == {**original, "hibernated": False}


def test_secrets_stay_out_of_repr() -> None:
    dto = WorkloadDeployedDto(repository_password="hunter2", values=[ValueOverrideDto(value="s3cr3t")])
    assert "hunter2" not in repr(dto)
    assert "s3cr3t" not in repr(dto)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"TENANTID": "a", "PoolRtId": "b"}, DeployedPoolDto(tenant_id="a", pool_rt_id="b")),
        ({}, DeployedPoolDto()),
        ({"tenantId": None}, DeployedPoolDto(tenant_id="")),
    ],
    ids=["case-insensitive", "missing-is-default", "null-string-is-default"],
)
def test_reading_is_lenient_like_system_text_json(
    payload: dict[str, object], expected: DeployedPoolDto
) -> None:
    assert DeployedPoolDto.model_validate(payload) == expected


def test_nullable_fields_keep_null() -> None:
    status = WorkloadDeploymentStatusDto.model_validate({"statusMessage": None, "success": True})
    assert status.status_message is None
    assert status.to_wire()["statusMessage"] is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([{"workloadType": "1"}], "field 'workloadType'"),
        ([{"workloadType": 9}], "field 'workloadType'"),
        ([{"tenantId": 5}], "field 'tenantId'"),
        ([{"receivesClusterSecrets": "yes"}], "field 'receivesClusterSecrets'"),
        ([{"values": [{"isSecret": 1}]}], "field 'values.0.isSecret'"),
        ([], "expected 1 argument(s), got 0"),
        ("not-a-list", "must be a JSON array"),
    ],
)
def test_wrong_types_name_message_and_field(arguments: object, message: str) -> None:
    with pytest.raises(ContractError) as excinfo:
        decode_arguments("WorkloadDeployedAsync", arguments, CLIENT_METHODS)
    assert "WorkloadDeployedAsync" in str(excinfo.value)
    assert message in str(excinfo.value)


def test_method_lookup_is_case_insensitive_like_the_dotnet_dispatcher() -> None:
    assert decode_arguments("poolundeployedasync", ["t", "p"], CLIENT_METHODS) == ["t", "p"]
    with pytest.raises(ContractError, match="unknown hub method"):
        decode_arguments("NoSuchMethod", [], CLIENT_METHODS)


def test_server_arguments_are_in_wire_order_without_pool_name() -> None:
    assert [p for p, _ in SERVER_METHODS["RegisterPoolAsync"].parameters] == ["tenantId", "poolRtId"]
    assert encode_arguments("RegisterOperatorAsync", None) == [None]
    with pytest.raises(ContractError, match="expected 2 argument"):
        encode_arguments("RegisterPoolAsync", "acme", "65f0c0ffee0000000000aaaa", "pool-name")


def test_reports_encode_as_camel_case() -> None:
    report = OperatorDeployedPoolReportDto(tenant_id="t", pool_rt_id="p", workload_rt_ids=["w"])
    assert encode_arguments("ReportDeployedStateAsync", [report]) == [
        [{"tenantId": "t", "poolRtId": "p", "poolName": "", "workloadRtIds": ["w"]}]
    ]
    progress = WorkloadDeploymentProgressDto(
        tenant_id="t", workload_name="n", workload_rt_id="w", message="m"
    )
    assert encode_arguments("ReportWorkloadDeploymentProgressAsync", progress) == [
        {"tenantId": "t", "workloadName": "n", "workloadRtId": "w", "message": "m"}
    ]


def test_register_operator_result_is_a_list_of_pools() -> None:
    result = decode_result("RegisterOperatorAsync", [{"tenantId": "t", "poolRtId": "p", "extra": 1}])
    assert result == [DeployedPoolDto(tenant_id="t", pool_rt_id="p")]
    assert decode_result("RegisterPoolAsync", None) is None
    with pytest.raises(ContractError, match="RegisterOperatorAsync: result"):
        decode_result("RegisterOperatorAsync", {"not": "a list"})


def test_undeployed_carries_the_workload_type_as_integer() -> None:
    dto = WorkloadUndeployedDto.model_validate({"workloadType": 1, "workloadRtId": "w"})
    assert dto.to_wire()["workloadType"] == 1
