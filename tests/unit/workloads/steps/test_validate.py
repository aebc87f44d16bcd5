"""Step validate: the push's secrets known first, then the chart source, version and values checked."""

from __future__ import annotations

import pytest

from communication_operator.contracts import ValueOverrideDto
from communication_operator.redaction import KNOWN_SECRETS
from communication_operator.workloads.errors import InvalidWorkload, WorkloadError
from communication_operator.workloads.steps.validate import chart_of, deploy_secrets, validate
from communication_operator.workloads.values import OperatorContext

from ..doubles import dto

VALUES = OperatorContext(pool_namespace="octo", broker_password="broker-pw-4711", instance_prefix="t")


def test_the_pushs_secrets_include_the_url_password_and_are_remembered_process_wide() -> None:
    push = dto(
        repository_url="https://bot:url-pw-0815@charts.example/stable",
        values=[ValueOverrideDto(path="db.password", value="override-pw-42", is_secret=True)],
    )
    secrets = deploy_secrets(push, VALUES)

    assert {"url-pw-0815", "override-pw-42", "broker-pw-4711"} <= secrets
    assert KNOWN_SECRETS.redact("x url-pw-0815 override-pw-42") == "x *** ***"


def test_a_valid_push_gives_its_chart_version_and_rendered_values() -> None:
    push = dto(chart_version=" 1.2.3 ", values_yaml="replicaCount: 2\n")
    source = chart_of(push)
    valid = validate(push, VALUES)

    assert source.chart_ref.endswith("/web")
    assert valid.version == "1.2.3"
    assert "replicaCount: 2" in valid.rendered.base_yaml
    assert validate(dto(chart_version=""), VALUES).version is None  # newest in the repository


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"chart_version": "--set=x"}, "chartVersion '--set=x' is not a version or version constraint"),
        (
            {"values": [ValueOverrideDto(path="a..b", value="1")]},
            "override path 'a..b' has an empty segment (leading, trailing or doubled '.')",
        ),
    ],
)
def test_an_invalid_version_or_values_is_refused_as_invalid_input(
    fields: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidWorkload) as refused:
        validate(dto(**fields), VALUES)

    assert str(refused.value) == f"Invalid workload: {problem}"
    assert isinstance(refused.value, WorkloadError)


def test_an_unusable_repository_url_is_refused_without_its_password() -> None:
    with pytest.raises(InvalidWorkload) as refused:
        chart_of(dto(repository_url="ftp://bot:pa55word-xyz@charts.example/stable"))

    assert str(refused.value).startswith("Invalid workload: ")
    assert "pa55word-xyz" not in str(refused.value)
