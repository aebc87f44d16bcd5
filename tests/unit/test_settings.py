"""Settings from the upstream OPERATOR__* variables; errors name the variable; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from communication_operator.settings import ConfigurationError, LogFormat, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.upper().startswith("OPERATOR__"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_match_upstream(clean_environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.communication_controller_uri is None
    assert settings.auto_manage_pools is False
    assert settings.watch_namespace == ""
    assert settings.pool_namespace == "octo"
    assert settings.pool_registration_retry_seconds == 30
    assert settings.broker_virtual_host == "/"
    assert settings.broker_port == 5672
    assert settings.controller_verify_tls is True
    assert settings.helm.timeout_seconds == 300
    assert settings.helm.max_concurrent == 4
    assert settings.helm.history_max == 5
    assert settings.helm.binary == "helm"
    assert settings.log.format is LogFormat.JSON
    assert settings.authentication.enabled is False


def test_upstream_names_case_insensitive_and_nested(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "OPERATOR__COMMUNICATIONCONTROLLERURI": "https://controller.example:5015",
        "operator__autoManagePools": "true",
        "OPERATOR__WATCHNAMESPACE": "pools",
        "OPERATOR__POOLNAMESPACE": "octo-pools",
        "OPERATOR__POOLREGISTRATIONRETRYSECONDS": "0.5",
        "OPERATOR__INSTANCEPREFIX": "dev",
        "OPERATOR__BROKERHOST": "rabbit",
        "OPERATOR__BROKERPORT": "5671",
        "OPERATOR__BROKERUSER": "octo",
        "OPERATOR__BROKERPASSWORD": "broker-secret",
        "OPERATOR__AUTHENTICATION__ISSUERURI": "https://idp.example",
        "OPERATOR__AUTHENTICATION__CLIENTID": "operator",
        "OPERATOR__AUTHENTICATION__CLIENTSECRET": "client-secret",
        "OPERATOR__AUTHENTICATION__TENANTID": "OctoSystem",
        "OPERATOR__CLUSTERDEPENDENCIES__MONGODBHOST": "mongo:27017",
        "OPERATOR__CLUSTERSECRETS__MONGODBADMINPASSWORD": "mongo-secret",
        "OPERATOR__INGRESS__CLASSNAME": "nginx",
        "OPERATOR__INGRESS__ANNOTATIONS__1__NAME": "second",
        "OPERATOR__INGRESS__ANNOTATIONS__0__NAME": "first",
        "OPERATOR__INGRESS__ANNOTATIONS__0__VALUE": "one",
        "OPERATOR__HELM__TIMEOUTSECONDS": "120",
        "OPERATOR__HELM__MAXCONCURRENT": "2",
        "OPERATOR__HELM__HISTORYMAX": "3",
        "OPERATOR__HELM__BINARY": "/opt/helm",
        "OPERATOR__METRICS__PORT": "0",
        "OPERATOR__LOG__FORMAT": "text",
        "OPERATOR__CONTROLLERVERIFYTLS": "false",
        "OPERATOR__CONTROLLERCAFILE": str(ca_file),
    }
    for name, value in env.items():
        clean_environment.setenv(name, value)

    settings = load_settings()

    assert settings.communication_controller_uri == "https://controller.example:5015"
    assert settings.auto_manage_pools is True
    assert settings.mode_name == "central"
    assert settings.watch_namespace == "pools"
    assert settings.pool_namespace == "octo-pools"
    assert settings.pool_registration_retry_seconds == 0.5
    assert settings.instance_prefix == "dev"
    assert (settings.broker_host, settings.broker_port, settings.broker_user) == ("rabbit", 5671, "octo")
    assert settings.broker_password is not None
    assert settings.broker_password.get_secret_value() == "broker-secret"
    assert settings.authentication.enabled
    assert settings.authentication.tenant_id == "OctoSystem"
    assert settings.cluster_dependencies.mongodb_host == "mongo:27017"
    assert settings.cluster_secrets.mongodb_admin_password is not None
    assert settings.ingress.class_name == "nginx"
    assert [(a.name, a.value) for a in settings.ingress.annotations] == [("first", "one"), ("second", "")]
    assert (settings.helm.timeout_seconds, settings.helm.max_concurrent) == (120, 2)
    assert (settings.helm.history_max, settings.helm.binary) == (3, "/opt/helm")
    assert settings.metrics.port == 0
    assert settings.log.format is LogFormat.TEXT
    assert settings.controller_verify_tls is False


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "OPERATOR__POOLREGISTRATIONRETRYSECONDS",
            "soon",
            "OPERATOR__POOLREGISTRATIONRETRYSECONDS: Input should be a valid number",
        ),
        ("OPERATOR__AUTOMANAGEPOOLS", "maybe", "OPERATOR__AUTOMANAGEPOOLS: Input should be a valid boolean"),
        (
            "OPERATOR__BROKERPORT",
            "70000",
            "OPERATOR__BROKERPORT: Input should be less than or equal to 65535",
        ),
        ("OPERATOR__HELM__MAXCONCURRENT", "0", "OPERATOR__HELM__MAXCONCURRENT: Input should be greater than"),
        ("OPERATOR__LOG__FORMAT", "xml", "OPERATOR__LOG__FORMAT: Input should be 'json' or 'text'"),
        (
            "OPERATOR__HELM__FAILFASTCRASHLOOPRESTARTS",
            "0",
            "OPERATOR__HELM__FAILFASTCRASHLOOPRESTARTS: Input should be greater than or equal to 1",
        ),
        (
            "OPERATOR__HELM__FAILFAST",
            "sometimes",
            "OPERATOR__HELM__FAILFAST: Input should be a valid boolean",
        ),
        (
            "OPERATOR__POOLNAMESPACE",
            "Not_A_Namespace",
            "OPERATOR__POOLNAMESPACE: must be a Kubernetes namespace",
        ),
        (
            "OPERATOR__COMMUNICATIONCONTROLLERURI",
            "controller:5015",
            "OPERATOR__COMMUNICATIONCONTROLLERURI: must be",
        ),
        (
            "OPERATOR__INGRESS__ANNOTATIONS__0__VALUE",
            "orphan",
            "OPERATOR__INGRESS__ANNOTATIONS__0__NAME: Field",
        ),
    ],
)
def test_invalid_value_names_the_variable(
    clean_environment: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    clean_environment.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)
    assert value not in str(caught.value) or value in expected


def test_half_configured_authentication_names_the_missing_variable(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTID", "operator")
    with pytest.raises(ConfigurationError, match="OPERATOR__AUTHENTICATION__ISSUERURI must be set as well"):
        load_settings()


def test_errors_never_echo_secret_values(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("OPERATOR__BROKERPORT", "not-a-port-hunter2")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_secrets_hidden_in_repr(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("OPERATOR__BROKERPASSWORD", "broker-hunter2")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__ISSUERURI", "https://idp")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTID", "op")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTSECRET", "client-hunter2")
    clean_environment.setenv("OPERATOR__CLUSTERSECRETS__STREAMDATAPASSWORD", "stream-hunter2")
    settings = load_settings()
    text = f"{settings!r} {settings} {settings.model_dump()}"
    assert "hunter2" not in text


def test_run_requires_the_controller_uri(clean_environment: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"^OPERATOR__COMMUNICATIONCONTROLLERURI: required"):
        load_settings().require_controller_uri()


def test_retry_disabled_at_zero_or_below(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("OPERATOR__POOLREGISTRATIONRETRYSECONDS", "-1")
    assert load_settings().registration_retry_enabled is False
    assert Settings(pool_registration_retry_seconds=30).registration_retry_enabled is True


def test_hub_options_carry_connection_settings(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    clean_environment.setenv("OPERATOR__COMMUNICATIONCONTROLLERURI", "https://controller:5015/")
    clean_environment.setenv("OPERATOR__CONTROLLERVERIFYTLS", "false")
    clean_environment.setenv("OPERATOR__CONTROLLERCAFILE", str(ca_file))
    clean_environment.setenv("OPERATOR__CONTROLLERSERVERTIMEOUTSECONDS", "12")
    options = load_settings().hub_options()
    assert options.url == "https://controller:5015/"
    assert options.verify_tls is False
    assert options.ca_file == str(ca_file)
    assert options.server_timeout == 12


def test_fail_fast_settings_become_the_workload_policy(clean_environment: pytest.MonkeyPatch) -> None:
    from communication_operator.runtime.workloads import workload_options
    from communication_operator.workloads.signals.policy import FailFastPolicy

    assert workload_options(load_settings()).fail_fast == FailFastPolicy()
    for name, value in {
        "OPERATOR__HELM__FAILFAST": "false",
        "OPERATOR__HELM__FAILFASTIMAGEPULLSECONDS": "90",
        "OPERATOR__HELM__FAILFASTIMAGENOTFOUNDSECONDS": "5",
        "OPERATOR__HELM__FAILFASTCRASHLOOPRESTARTS": "10",
        "OPERATOR__HELM__FAILFASTUNSCHEDULABLESECONDS": "0",
    }.items():
        clean_environment.setenv(name, value)
    policy = workload_options(load_settings()).fail_fast
    assert policy == FailFastPolicy(
        enabled=False,
        image_pull_grace_seconds=90,
        hard_image_pull_grace_seconds=5,
        crash_loop_restarts=10,
        unschedulable_grace_seconds=0,
    )
    # The thresholds nobody tunes keep their defaults.
    assert policy.config_error_grace_seconds == FailFastPolicy().config_error_grace_seconds


def test_a_missing_ca_file_stops_the_start(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment.setenv("OPERATOR__CONTROLLERCAFILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="OPERATOR__CONTROLLERCAFILE: Path does not point to a file"):
        load_settings()


def test_a_section_that_is_not_json_is_a_configuration_error_without_the_value(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("OPERATOR__CLUSTERSECRETS", "{mongo-hunter2")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith("OPERATOR__CLUSTERSECRETS: not a JSON object")
    assert "hunter2" not in str(caught.value)


def test_secret_values_name_every_configured_secret(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("OPERATOR__COMMUNICATIONCONTROLLERURI", "https://op:uri-hunter2@ctl.example")
    clean_environment.setenv("OPERATOR__BROKERPASSWORD", "broker-hunter2")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__ISSUERURI", "https://idp")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTID", "op")
    clean_environment.setenv("OPERATOR__AUTHENTICATION__CLIENTSECRET", "client-hunter2")
    clean_environment.setenv("OPERATOR__CLUSTERSECRETS__MONGODBADMINPASSWORD", "admin-hunter2")
    assert load_settings().secret_values() == {
        "uri-hunter2",
        "broker-hunter2",
        "client-hunter2",
        "admin-hunter2",
    }
