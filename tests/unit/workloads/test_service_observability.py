"""WorkloadService's transition log lines (context, no secrets) and helm metrics, with the stand-in helm."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from communication_operator.contracts import ValueOverrideDto, WorkloadUndeployedDto
from communication_operator.logs import JsonFormatter
from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.helm import HelmCli
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.service import WorkloadService
from communication_operator.workloads.values import OperatorContext

from .doubles import BROKER_PASSWORD, POOL, RELEASE, TENANT, WORKLOAD, Harness, until

SECRET = "override-s3cret-value"
REPO_PASSWORD = "repo-pa55word-x"


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics()


@pytest.fixture
def harness(tmp_path: Path, metrics: OperatorMetrics) -> Harness:
    h = Harness(tmp_path)
    h.fake.history((3, "deployed"))
    h.service = WorkloadService(
        h.hub,
        HelmCli(binary=str(h.fake.binary), kill_grace=5.0),
        h.secrets,
        h._watcher,
        OperatorContext(pool_namespace="octo", broker_password=BROKER_PASSWORD, instance_prefix="test"),
        WorkloadOptions(namespace="octo", timeout_seconds=60),
        metrics=metrics,
    )
    return h


def _json_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name.startswith("communication_operator.workloads")
    ]


def _runs(metrics: OperatorMetrics, operation: str, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "communication_operator_helm_runs_total", {"operation": operation, "result": result}
    )
    return value or 0.0


async def test_deploy_and_undeploy_lines_carry_the_context_and_no_secret(
    harness: Harness, metrics: OperatorMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    harness.fake.set("upgrade", exit=1, stderr=f"Error: webhook rejected {SECRET}\n", call=1)
    caplog.set_level(logging.INFO, logger="communication_operator")
    secret_fields: dict[str, Any] = {
        "values": [ValueOverrideDto(path="oauth.clientSecret", value=SECRET, is_secret=True)],
        "repository_username": "reader",
        "repository_password": REPO_PASSWORD,
    }
    await harness.deploy(**secret_fields)  # fails
    await harness.settle()
    await harness.deploy(chart_version="0.2.0", **secret_fields)  # succeeds
    await harness.settle()
    await harness.service.on_workload_undeployed(
        WorkloadUndeployedDto(tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="w")
    )
    await harness.settle()

    lines = _json_lines(caplog)
    raw = "\n".join(json.dumps(line) for line in lines)
    for secret in (SECRET, REPO_PASSWORD, BROKER_PASSWORD):
        assert secret not in raw
    expected = {"tenant": TENANT, "pool": POOL, "workload": WORKLOAD, "release": RELEASE}

    def line_starting(prefix: str) -> dict[str, Any]:
        found = [line for line in lines if line["message"].startswith(prefix)]
        assert found, f"no log line starts with {prefix!r}: {[line['message'] for line in lines]}"
        return found[-1]

    for prefix in (
        "deploying workload",
        "deploy of workload",  # the failure
        f"release {RELEASE} deployed in",
        "undeploying workload",
        "undeployed workload",
    ):
        line = line_starting(prefix)
        assert {key: line.get(key) for key in expected} == expected, line
    assert "webhook rejected ***" in line_starting("deploy of workload")["message"]
    assert line_starting("deploy of workload")["level"] == "warning"

    assert _runs(metrics, "dry-run", "success") == 2
    assert _runs(metrics, "upgrade", "failure") == 1
    assert _runs(metrics, "upgrade", "success") == 1
    assert _runs(metrics, "uninstall", "success") == 1
    count = metrics.registry.get_sample_value(
        "communication_operator_helm_run_duration_seconds_count",
        {"operation": "uninstall", "result": "success"},
    )
    assert count == 1


async def test_a_superseded_deploy_logs_why_and_counts_as_cancelled(
    harness: Harness, metrics: OperatorMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="communication_operator")
    harness.fake.set("upgrade", sleep=30, call=1)
    await harness.deploy(chart_version="0.1.0")
    await until(lambda: harness.fake.calls("upgrade"))
    await harness.deploy(chart_version="0.2.0")
    await harness.settle()

    cancelled = next(line for line in _json_lines(caplog) if "cancelled" in line["message"])
    assert cancelled["message"] == (
        f"deploy of release {RELEASE} cancelled (superseded by a newer deploy); no status reported"
    )
    assert cancelled["release"] == RELEASE
    assert _runs(metrics, "upgrade", "cancelled") == 1
    assert _runs(metrics, "upgrade", "success") == 1
