"""The composition root's settings mappers: hub options, the token source, the secrets to redact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from communication_operator.runtime.hub import hub_options, token_provider
from communication_operator.runtime.secrets import configured_secrets
from communication_operator.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("OPERATOR__"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_hub_options_carry_connection_settings(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    clean_environment.setenv("OPERATOR__COMMUNICATIONCONTROLLERURI", "https://controller:5015/")
    clean_environment.setenv("OPERATOR__CONTROLLERVERIFYTLS", "false")
    clean_environment.setenv("OPERATOR__CONTROLLERCAFILE", str(ca_file))
    clean_environment.setenv("OPERATOR__CONTROLLERSERVERTIMEOUTSECONDS", "12")
    options = hub_options(load_settings())
    assert options.url == "https://controller:5015/"
    assert options.verify_tls is False
    assert options.ca_file == str(ca_file)
    assert options.server_timeout == 12


def test_no_token_source_without_authentication(clean_environment: pytest.MonkeyPatch) -> None:
    assert token_provider(load_settings()) is None


def test_the_token_source_carries_the_authentication_settings(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__ISSUERURI", "https://idp.example")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTID", "operator")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTSECRET", "client-hunter2")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__TENANTID", "system")
    clean_environment.setenv("OPERATOR__CONTROLLERCAFILE", str(ca_file))
    provider = token_provider(load_settings())
    assert provider is not None
    assert (provider.issuer_uri, provider.client_id, provider.tenant_id) == (
        "https://idp.example",
        "operator",
        "system",
    )
    assert provider.client_secret.get_secret_value() == "client-hunter2"
    assert provider.ca_file == str(ca_file)


def test_secret_values_name_every_configured_secret(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("OPERATOR__COMMUNICATIONCONTROLLERURI", "https://op:uri-hunter2@ctl.example")
    clean_environment.setenv("OPERATOR__BROKERPASSWORD", "broker-hunter2")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__ISSUERURI", "https://idp")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTID", "op")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTSECRET", "client-hunter2")
    clean_environment.setenv("OPERATOR__CLUSTERSECRETS__MONGODBADMINPASSWORD", "admin-hunter2")
    assert configured_secrets(load_settings()) == {
        "uri-hunter2",
        "broker-hunter2",
        "client-hunter2",
        "admin-hunter2",
    }
