"""Prometheus metrics of the operator, on a registry of its own.

The metrics live on :class:`OperatorMetrics` (one instance per process, built by the entry point) rather
than on the global default registry, so tests and embedded runs can create as many as they like and
the exposition holds only what this operator defines. :func:`start_metrics_server` serves one
registry on its own port (``OPERATOR__METRICS__PORT``, 9090 by default).

The names are the operations reference in ``docs/operations.md``; changing one is a breaking change for
dashboards and alerts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import Thread
from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

logger = logging.getLogger(__name__)

NAMESPACE: Final = "communication_operator"

# Pool phases as written to `status.phase` of a CommunicationPool; always exported (0 when absent)
# so that an alert on `pools{phase="Failed"} > 0` has a series to evaluate.
POOL_PHASES: Final = ("Pending", "Registered", "Failed")

#: Owned pools by phase, read when the gauge is scraped (from the metrics server's thread).
PoolPhaseSource = Callable[[], Mapping[str, int]]

# Helm runs take seconds to minutes (the default helm timeout is 300 s).
HELM_DURATION_BUCKETS: Final = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0)
# From a kube signal (pod state change, warning event) to the report reaching the controller.
SIGNAL_TO_REPORT_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class InvocationOutcome:
    """Values of the ``outcome`` label of ``hub_invocations_total``."""

    OK: Final = "ok"
    ERROR: Final = "error"  # the hub answered with an error completion
    TIMEOUT: Final = "timeout"
    DISCONNECTED: Final = "disconnected"  # the connection dropped before the completion arrived
    UNSENT: Final = "unsent"  # never sent: too large for the controller's limit, or not encodable


class DropReason:
    """Values of the ``reason`` label of ``reports_dropped_total``."""

    TOO_LARGE: Final = "too_large"  # over the message limit even with its free text shortened
    UNENCODABLE: Final = "unencodable"  # cannot be written as JSON / UTF-8
    FAILED: Final = "failed"  # sending raised something unexpected (a bug); the outbox went on


class HelmResult:
    """Values of the ``result`` label of the helm metrics."""

    SUCCESS: Final = "success"
    FAILURE: Final = "failure"  # helm exited non-zero
    TIMEOUT: Final = "timeout"
    CANCELLED: Final = "cancelled"


class DeployResult:
    """Values of the ``result`` label of the workload deploy and undeploy counters."""

    SUCCESS: Final = "success"
    FAILURE: Final = "failure"  # reported as failed (refused input, a failed step, or a bug)
    CANCELLED: Final = "cancelled"  # superseded, undeployed meanwhile, or shutdown: nothing reported


@dataclass(eq=False)
class OperatorMetrics:
    """Every metric the operator exports, registered on ``registry`` (a fresh one by default)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.build_info = Gauge(
            "build_info",
            "Always 1; labels carry the operator version and mode (central or edge).",
            ["version", "mode"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.hub_connected = Gauge(
            "hub_connected",
            "1 while the SignalR connection to the Communication Controller is open, else 0.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.hub_reconnects = Counter(
            "hub_reconnects",
            "Connections to the controller re-established after a loss.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.hub_invocations = Counter(
            "hub_invocations",
            "Hub method invocations sent to the controller, by method and outcome.",
            ["method", "outcome"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.outbox_depth = Gauge(
            "outbox_depth",
            "Reports queued while the controller is unreachable, waiting to be sent.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.pools = PoolPhaseCollector()
        r.register(self.pools)
        self.helm_runs = Counter(
            "helm_runs",
            "Finished helm invocations, by operation (install, upgrade, uninstall, ...) and result.",
            ["operation", "result"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.helm_run_duration = Histogram(
            "helm_run_duration_seconds",
            "Wall time of helm invocations, by operation and result.",
            ["operation", "result"],
            buckets=HELM_DURATION_BUCKETS,
            namespace=NAMESPACE,
            registry=r,
        )
        self.signal_to_report_latency = Histogram(
            "signal_to_report_seconds",
            "Time from a cluster signal (pod state, event) to the matching report sent to the controller.",
            buckets=SIGNAL_TO_REPORT_BUCKETS,
            namespace=NAMESPACE,
            registry=r,
        )
        self.reports_dropped = Counter(
            "reports_dropped",
            "Reports given up without delivery (too large even when shortened, or not encodable), by "
            "method and reason.",
            ["method", "reason"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.pushes_refused = Counter(
            "hub_pushes_refused",
            "Controller pushes refused because they failed validation (invalid ids, unsupported type, ...).",
            ["method"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.malformed_records = Counter(
            "hub_malformed_records",
            "Records from the controller that were not valid JSON (or too deep or large to parse), dropped.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.task_failures = Counter(
            "background_task_failures",
            "Long-lived background tasks that died; any increase means /healthz fails until a restart.",
            ["task"],
            namespace=NAMESPACE,
            registry=r,
        )
        self._workload_metrics(r)
        self.hub_connected.set(0)
        self.outbox_depth.set(0)

    def _workload_metrics(self, r: CollectorRegistry) -> None:
        self.workload_deploys_started = Counter(
            "workload_deploys_started",
            "Workload deploys begun (one per WorkloadDeployedAsync acted on).",
            namespace=NAMESPACE,
            registry=r,
        )
        self.workload_deploys = Counter(
            "workload_deploys",
            "Workload deploys finished, by result (success, failure, cancelled).",
            ["result"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.workload_deploys_stopped_early = Counter(
            "workload_deploys_stopped_early",
            "Failed deploys whose helm upgrade was stopped before its timeout by a fatal signal (fail-fast).",
            namespace=NAMESPACE,
            registry=r,
        )
        self.release_recoveries = Counter(
            "workload_release_recoveries",
            "Releases found stuck in pending-* and unlocked before a deploy.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.workload_undeploys = Counter(
            "workload_undeploys",
            "Workload undeploys finished (helm uninstall and the Secret's deletion), by result.",
            ["result"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.helm_slots_in_use = Gauge(
            "helm_slots_in_use",
            "Deploys and undeploys holding one of the OPERATOR__HELM__MAXCONCURRENT slots.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.helm_slots_in_use.set(0)

    # Small helpers so call sites stay one line and label values stay consistent.

    def set_build_info(self, version: str, mode: str) -> None:
        self.build_info.labels(version=version, mode=mode).set(1)

    def set_hub_connected(self, connected: bool) -> None:
        self.hub_connected.set(1 if connected else 0)

    def record_reconnect(self) -> None:
        self.hub_reconnects.inc()

    def record_invocation(self, method: str, outcome: str) -> None:
        self.hub_invocations.labels(method=method, outcome=outcome).inc()

    def record_report_dropped(self, method: str, reason: str) -> None:
        self.reports_dropped.labels(method=method, reason=reason).inc()

    def record_push_refused(self, method: str) -> None:
        self.pushes_refused.labels(method=method).inc()

    def record_malformed_record(self) -> None:
        self.malformed_records.inc()

    def record_task_failure(self, task: str) -> None:
        self.task_failures.labels(task=task).inc()

    def set_outbox_depth(self, depth: int) -> None:
        self.outbox_depth.set(depth)

    def count_pools_with(self, source: PoolPhaseSource) -> None:
        """Let the ``pools`` gauge call ``source`` at every scrape (replacing any earlier source)."""
        self.pools.source = source

    def record_helm_run(self, operation: str, result: str, seconds: float) -> None:
        self.helm_runs.labels(operation=operation, result=result).inc()
        self.helm_run_duration.labels(operation=operation, result=result).observe(seconds)

    @contextmanager
    def time_helm_run(self, operation: str) -> Iterator[HelmRunTimer]:
        """Time a helm run; the result is ``success`` unless the body sets another or raises.

        An exception counts as ``failure`` unless the body already chose a result (``timeout``, ...).
        """
        timer = HelmRunTimer()
        started = time.monotonic()
        try:
            yield timer
        except BaseException:
            if timer.result == HelmResult.SUCCESS:
                timer.result = HelmResult.FAILURE
            raise
        finally:
            self.record_helm_run(operation, timer.result, time.monotonic() - started)

    def record_deploy_started(self) -> None:
        self.workload_deploys_started.inc()

    def record_deploy_outcome(self, *, failed: bool, stopped_early: bool = False) -> None:
        self.workload_deploys.labels(result=DeployResult.FAILURE if failed else DeployResult.SUCCESS).inc()
        if stopped_early:
            self.workload_deploys_stopped_early.inc()

    def record_deploy_cancelled(self) -> None:
        self.workload_deploys.labels(result=DeployResult.CANCELLED).inc()

    def record_release_recovery(self) -> None:
        self.release_recoveries.inc()

    def record_undeploy(self, *, failed: bool) -> None:
        self.workload_undeploys.labels(result=DeployResult.FAILURE if failed else DeployResult.SUCCESS).inc()

    def set_helm_slots_in_use(self, count: int) -> None:
        self.helm_slots_in_use.set(count)

    def observe_signal_to_report(self, seconds: float) -> None:
        self.signal_to_report_latency.observe(max(seconds, 0.0))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)


class PoolPhaseCollector:
    """The ``pools`` gauge, computed when scraped from whatever the source says then.

    Known phases missing from the source's counts are exported as 0. No source (no pool service yet)
    means no pools. The source runs on the scraping thread, so it must only read.
    """

    NAME: Final = f"{NAMESPACE}_pools"
    DOCUMENTATION: Final = "CommunicationPools served by this operator, by status phase."

    def __init__(self) -> None:
        self.source: PoolPhaseSource = dict

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.NAME, self.DOCUMENTATION, labels=["phase"])]

    def collect(self) -> list[Metric]:
        counts = self.source()
        family = GaugeMetricFamily(self.NAME, self.DOCUMENTATION, labels=["phase"])
        for phase in POOL_PHASES:
            family.add_metric([phase], counts.get(phase, 0))
        for phase, count in counts.items():
            if phase not in POOL_PHASES:
                family.add_metric([phase], count)
        return [family]


@dataclass
class HelmRunTimer:
    """Handed out by :meth:`OperatorMetrics.time_helm_run`; set ``result`` to record a non-success."""

    result: str = HelmResult.SUCCESS


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`stop` shuts it down (the thread is a daemon anyway)."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(metrics: OperatorMetrics, port: int, addr: str = "0.0.0.0") -> MetricsServer | None:
    """Serve ``metrics`` on ``addr:port`` in a daemon thread; ``port`` 0 means metrics are disabled.

    A thread rather than the event loop: a scrape must not wait behind a busy loop, and
    prometheus_client's server is a small, well-worn WSGI server.
    """
    if port == 0:
        logger.info("metrics endpoint disabled (OPERATOR__METRICS__PORT=0)")
        return None
    server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    logger.info("serving Prometheus metrics on %s:%d/metrics", addr, server.server_port)
    return MetricsServer(server=server, thread=thread)
