"""values-context.yaml from the OPERATOR__INGRESS__* variables (octo-spec §4.6, §4.14).

Upstream projects ``ingress.tls`` only when ``Ingress.Tls`` is set and writes no ``ingress`` key at
all without any ingress option; a ``tls: false`` there would switch off a chart's own TLS default.
"""

from __future__ import annotations

import os

import pytest
import yaml

from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.runtime.workloads import values_context_from_settings
from communication_operator.settings import load_settings
from communication_operator.workloads.values import render_values

DTO = WorkloadDeployedDto(
    tenant_id="acme", pool_rt_id="65f0c0ffee0000000000aaaa", workload_rt_id="65f0c0ffee0000000000bbbb"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("OPERATOR__"):
            monkeypatch.delenv(name)
    return monkeypatch


def _context_file(dto: WorkloadDeployedDto = DTO) -> dict[str, object]:
    text = render_values(dto, values_context_from_settings(load_settings())).context_yaml
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def test_no_ingress_option_means_no_ingress_key() -> None:
    assert "ingress" not in _context_file()


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("True", True)])
def test_tls_is_projected_only_when_set(
    clean_environment: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    clean_environment.setenv("OPERATOR__INGRESS__TLS", value)
    assert _context_file()["ingress"] == {"tls": expected}


def test_a_class_name_alone_carries_no_tls_key(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("OPERATOR__INGRESS__CLASSNAME", "nginx")
    assert _context_file()["ingress"] == {"className": "nginx"}


def test_a_public_workload_without_options_gets_enabled_and_no_tls() -> None:
    public = DTO.model_copy(update={"ingress_enabled": True, "hostname": "web.example"})
    values = _context_file(public)
    assert values["ingress"] == {"enabled": True}
    assert values["publicUri"] == "https://web.example"
