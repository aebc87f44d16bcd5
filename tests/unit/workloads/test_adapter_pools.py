"""Adapter pools (``workloadType`` 2): accepted, no cluster secrets, installed in the platform namespace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from communication_operator.contracts import CLIENT_METHODS, ClientMethod, WorkloadType, decode_arguments
from communication_operator.runtime.workloads import workload_options
from communication_operator.settings import ConfigurationError, load_settings
from communication_operator.workloads.values import ClusterSecrets, OperatorContext, injected_overrides

from .doubles import Harness
from .test_values import dto

CLUSTER_SECRETS = ClusterSecrets(
    mongodb_user_password="user-pa55", mongodb_admin_password="admin-pa55", stream_data_password="stream-pa55"
)


def test_workload_type_two_is_an_adapter_pool_on_the_wire() -> None:
    (decoded,) = decode_arguments(
        ClientMethod.WORKLOAD_DEPLOYED, [dto(workload_type=2).to_wire()], CLIENT_METHODS
    )
    assert decoded.workload_type is WorkloadType.ADAPTER_POOL


@pytest.mark.parametrize(
    ("workload_type", "injected"),
    [
        (
            WorkloadType.ADAPTER,
            ["secrets.databaseUser", "secrets.databaseAdmin", "secrets.streamDataPassword"],
        ),
        (
            WorkloadType.APPLICATION,
            ["secrets.databaseUser", "secrets.databaseAdmin", "secrets.streamDataPassword"],
        ),
        (WorkloadType.ADAPTER_POOL, []),
    ],
)
def test_cluster_secrets_are_never_injected_into_an_adapter_pool(
    workload_type: WorkloadType, injected: list[str]
) -> None:
    context = OperatorContext(cluster_secrets=CLUSTER_SECRETS)
    entries = injected_overrides(dto(workload_type=workload_type, receives_cluster_secrets=True), context)
    assert [entry.path for entry in entries] == injected


def test_platform_namespace_setting_defaults_to_the_pool_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("OPERATOR__"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPERATOR__POOLNAMESPACE", "pools")
    default = workload_options(load_settings())
    assert (default.namespace, default.platform_namespace) == ("pools", "")
    monkeypatch.setenv("OPERATOR__PLATFORMNAMESPACE", "octo-platform")
    assert workload_options(load_settings()).platform_namespace == "octo-platform"
    monkeypatch.setenv("OPERATOR__PLATFORMNAMESPACE", "Not A Namespace")
    with pytest.raises(ConfigurationError, match="OPERATOR__PLATFORMNAMESPACE"):
        load_settings()


def test_only_adapter_pools_go_to_the_platform_namespace(tmp_path: Path) -> None:
    h = Harness(tmp_path, platform_namespace="octo-platform")
    assert h.service.namespace_for(WorkloadType.ADAPTER_POOL) == "octo-platform"
    assert h.service.namespace_for(WorkloadType.ADAPTER) == "octo"
    assert h.service.namespace_for(WorkloadType.APPLICATION) == "octo"
    assert Harness(tmp_path / "b").service.namespace_for(WorkloadType.ADAPTER_POOL) == "octo"
