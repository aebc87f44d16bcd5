"""Step dry run: ``--dry-run=server`` before anything changes; helm's refusal fails the deploy."""

from __future__ import annotations

from pathlib import Path

import pytest

from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.steps.dry_run import dry_run
from communication_operator.workloads.steps.helm_upgrade import UpgradeArgs

from ..doubles import RELEASE, ScriptedHelm, metric

ARGS = UpgradeArgs(
    release=RELEASE,
    chart_ref="octo-abc/web",
    namespace="octo",
    values_files=[Path("/tmp/values.yaml")],
    chart_version="0.1.0",
    labels={"a": "b"},
    secrets=frozenset(),
)


async def test_the_dry_run_never_forces_conflicts_and_is_timed() -> None:
    helm = ScriptedHelm()
    metrics = OperatorMetrics()

    await dry_run(helm, WorkloadOptions(force_conflicts=True), metrics, ARGS)

    ((operation, args),) = helm.calls
    assert operation == "dry-run"
    assert args["force_conflicts"] is False
    assert metric(metrics, "helm_runs_total", operation="dry-run", result="success") == 1


async def test_dry_runs_switched_off_run_nothing() -> None:
    helm = ScriptedHelm()
    await dry_run(helm, WorkloadOptions(dry_run=False), None, ARGS)
    assert helm.calls == []


async def test_a_refused_dry_run_fails_the_deploy_with_helms_words() -> None:
    helm = ScriptedHelm()
    helm.failures["dry-run"] = HelmError("upgrade --install --dry-run=server x", 1, "Error: admission denied")
    metrics = OperatorMetrics()

    with pytest.raises(DeployFailed) as failed:
        await dry_run(helm, WorkloadOptions(), metrics, ARGS)

    assert str(failed.value) == str(helm.failures["dry-run"])
    assert metric(metrics, "helm_runs_total", operation="dry-run", result="failure") == 1
