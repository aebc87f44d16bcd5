"""The operator's metrics move for real deploys: helm runs by operation and result, signal latency."""

from __future__ import annotations

import pytest

from communication_operator.metrics import OperatorMetrics
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.waiting import eventually

from .conftest import HELM_TIMEOUT, DeployerFactory

pytestmark = pytest.mark.cluster


def _value(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"communication_operator_{name}", labels) or 0.0


async def test_helm_runs_and_signal_to_report_are_recorded(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule("example.invalid/*", "image-pull-backoff")
    metrics = OperatorMetrics()
    d = await deployer(metrics=metrics)

    good = await d.deploy("good")
    assert (await d.wait_settled(good))["deploymentState"] == "Deployed"
    assert _value(metrics, "helm_runs_total", operation="dry-run", result="success") == 1
    assert _value(metrics, "helm_runs_total", operation="upgrade", result="success") == 1
    assert _value(metrics, "helm_run_duration_seconds_count", operation="upgrade", result="success") == 1
    assert _value(metrics, "helm_run_duration_seconds_sum", operation="upgrade", result="success") > 0
    # A good deploy has nothing wrong to report.
    assert _value(metrics, "signal_to_report_seconds_count") == 0

    bad = await d.deploy("bad", values=[{"path": "image.repository", "value": "example.invalid/nope"}])
    assert (await d.wait_settled(bad))["deploymentState"] == "Error"
    progress_reports = [r for r in await d.reports(bad) if r[0] == "ReportWorkloadDeploymentProgressAsync"]
    assert progress_reports
    # Every live report came from a watch event and was measured; at most the reports made when a
    # signal aged into fatality (no event) are not.
    measured = _value(metrics, "signal_to_report_seconds_count")
    assert 1 <= measured <= len(progress_reports)
    # Each is the time from the pod's change to its report, both within the fail-fast deploy: shorter
    # than its helm timeout. How fast, benchmarks/ measures (docs/benchmarks.md), not this test.
    assert 0 < _value(metrics, "signal_to_report_seconds_sum") / measured < HELM_TIMEOUT
    # Fail-fast stops the real upgrade: helm is cancelled, not failed by its own timeout.
    assert _value(metrics, "helm_runs_total", operation="upgrade", result="cancelled") == 1
    assert _value(metrics, "helm_runs_total", operation="dry-run", result="success") == 2

    await d.sim.admin.undeploy_workload(good)

    async def uninstalled() -> bool:
        return _value(metrics, "helm_runs_total", operation="uninstall", result="success") == 1

    await eventually(uninstalled, timeout=40, what="helm uninstall recorded")
