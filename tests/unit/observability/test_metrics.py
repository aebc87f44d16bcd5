"""The operator's Prometheus metrics: names, own registry, helpers and the HTTP endpoint."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from communication_operator.metrics import (
    HelmResult,
    InvocationOutcome,
    OperatorMetrics,
    start_metrics_server,
)

# The documented names (docs/operations.md); dashboards depend on them.
EXPECTED_SAMPLE_NAMES = {
    "communication_operator_build_info",
    "communication_operator_hub_connected",
    "communication_operator_hub_reconnects_total",
    "communication_operator_hub_invocations_total",
    "communication_operator_outbox_depth",
    "communication_operator_pools",
    "communication_operator_helm_runs_total",
    "communication_operator_helm_run_duration_seconds_bucket",
    "communication_operator_helm_run_duration_seconds_sum",
    "communication_operator_helm_run_duration_seconds_count",
    "communication_operator_signal_to_report_seconds_bucket",
    "communication_operator_signal_to_report_seconds_count",
}


def _samples(metrics: OperatorMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _exercise(metrics: OperatorMetrics) -> None:
    metrics.set_build_info("0.1.0", "central")
    metrics.set_hub_connected(True)
    metrics.record_reconnect()
    metrics.record_invocation("RegisterOperator", InvocationOutcome.OK)
    metrics.set_outbox_depth(3)
    metrics.count_pools_with(lambda: {"Registered": 2})
    metrics.record_helm_run("upgrade", HelmResult.SUCCESS, 4.2)
    metrics.observe_signal_to_report(0.3)


def test_exposition_contains_every_documented_metric() -> None:
    metrics = OperatorMetrics()
    _exercise(metrics)
    names = {name for name, _ in _samples(metrics)}
    missing = EXPECTED_SAMPLE_NAMES - names
    assert not missing, f"metrics missing from the exposition: {sorted(missing)}"


def test_metrics_use_their_own_registry_not_the_global_one() -> None:
    first, second = OperatorMetrics(), OperatorMetrics()  # a second instance must not collide
    first.record_reconnect()
    assert REGISTRY.get_sample_value("communication_operator_hub_reconnects_total") is None
    assert second.registry.get_sample_value("communication_operator_hub_reconnects_total") == 0
    assert first.registry.get_sample_value("communication_operator_hub_reconnects_total") == 1


def test_values_reflect_the_helpers() -> None:
    metrics = OperatorMetrics()
    _exercise(metrics)
    metrics.set_hub_connected(False)
    samples = _samples(metrics)
    assert samples[("communication_operator_hub_connected", frozenset())] == 0
    assert samples[("communication_operator_outbox_depth", frozenset())] == 3
    invocation = frozenset({("method", "RegisterOperator"), ("outcome", "ok")})
    assert samples[("communication_operator_hub_invocations_total", invocation)] == 1
    helm = frozenset({("operation", "upgrade"), ("result", "success")})
    assert samples[("communication_operator_helm_runs_total", helm)] == 1
    assert samples[("communication_operator_helm_run_duration_seconds_sum", helm)] == pytest.approx(4.2)
    assert samples[("communication_operator_signal_to_report_seconds_count", frozenset())] == 1


def test_pool_phases_are_replaced_and_known_phases_default_to_zero() -> None:
    metrics = OperatorMetrics()
    counts = {"Registered": 2, "Failed": 1}
    metrics.count_pools_with(lambda: counts)
    counts = {"Registered": 1}  # read at scrape time: the gauge shows what the source says now
    samples = _samples(metrics)

    def phase(name: str) -> float:
        return samples[("communication_operator_pools", frozenset({("phase", name)}))]

    assert (phase("Registered"), phase("Failed"), phase("Pending")) == (1, 0, 0)


def test_pool_phases_are_read_from_the_source_at_every_scrape() -> None:
    metrics = OperatorMetrics()
    assert metrics.registry.get_sample_value("communication_operator_pools", {"phase": "Pending"}) == 0
    counts = {"Pending": 3}
    metrics.count_pools_with(lambda: counts)
    assert metrics.registry.get_sample_value("communication_operator_pools", {"phase": "Pending"}) == 3
    counts["Pending"] = 1
    counts["Unknown"] = 2  # a phase outside the documented ones is still exported
    get = metrics.registry.get_sample_value
    assert get("communication_operator_pools", {"phase": "Pending"}) == 1
    assert get("communication_operator_pools", {"phase": "Unknown"}) == 2


def _run_that_times_out(metrics: OperatorMetrics) -> None:
    with metrics.time_helm_run("upgrade") as run:
        run.result = HelmResult.TIMEOUT
        raise TimeoutError


def test_time_helm_run_records_failure_on_exception_and_keeps_a_chosen_result() -> None:
    metrics = OperatorMetrics()
    with pytest.raises(RuntimeError), metrics.time_helm_run("upgrade"):
        raise RuntimeError("helm upgrade failed with exit code 1")
    with pytest.raises(TimeoutError):
        _run_that_times_out(metrics)
    with metrics.time_helm_run("uninstall"):
        pass
    get = metrics.registry.get_sample_value
    name = "communication_operator_helm_runs_total"
    assert get(name, {"operation": "upgrade", "result": "failure"}) == 1
    assert get(name, {"operation": "upgrade", "result": "timeout"}) == 1
    assert get(name, {"operation": "uninstall", "result": "success"}) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_server_serves_the_registry_over_http() -> None:
    metrics = OperatorMetrics()
    metrics.record_invocation("RegisterPool", InvocationOutcome.TIMEOUT)
    server = start_metrics_server(metrics, _free_port(), addr="127.0.0.1")
    assert server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.stop()
    assert 'communication_operator_hub_invocations_total{method="RegisterPool",outcome="timeout"} 1.0' in body
    # Only our registry: the default registry's process/platform collectors are not exported.
    assert "python_info" not in body


def test_port_zero_disables_the_endpoint() -> None:
    assert start_metrics_server(OperatorMetrics(), 0) is None
