"""Step watched upgrade: helm runs while the watcher reports; a fatal signal stops helm early, and the
watcher is stopped whatever happens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.errors import DeployFailed, StoppedEarly
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.ports import Delivery
from communication_operator.workloads.steps.helm_upgrade import UpgradeArgs
from communication_operator.workloads.steps.upgrade import watched_upgrade

from ..doubles import RELEASE, FakeWatcher, ScriptedHelm, metric

ARGS = UpgradeArgs(
    release=RELEASE,
    chart_ref="octo-abc/web",
    namespace="octo",
    values_files=[Path("/tmp/values.yaml")],
    chart_version=None,
    labels={},
    secrets=frozenset(),
    set_values={"replicaCount": "2"},
)
OPTIONS = WorkloadOptions(timeout_seconds=60, force_conflicts=True)


async def no_sink(text: str) -> Delivery:
    return None


def parts() -> tuple[ScriptedHelm, FakeWatcher, OperatorMetrics]:
    return ScriptedHelm(), FakeWatcher(RELEASE, "octo", no_sink, []), OperatorMetrics()


async def test_a_successful_upgrade_forces_conflicts_when_asked_and_stops_the_watcher() -> None:
    helm, watcher, metrics = parts()

    await watched_upgrade(helm, OPTIONS, metrics, watcher, ARGS, {})

    ((operation, args),) = helm.calls
    assert operation == "upgrade"
    assert (args["force_conflicts"], args["set_values"]) == (True, {"replicaCount": "2"})
    assert watcher.started.is_set()
    assert watcher.stopped
    assert metric(metrics, "helm_runs_total", operation="upgrade", result="success") == 1


async def test_a_failed_upgrade_fails_with_helms_words_and_the_pod_diagnostics() -> None:
    helm, watcher, metrics = parts()
    helm.failures["upgrade"] = HelmError("upgrade --install x", 1, "Error: context deadline exceeded")
    watcher.text = "Pod web-1 container 'web' waiting: ImagePullBackOff"

    with pytest.raises(DeployFailed) as failed:
        await watched_upgrade(helm, OPTIONS, metrics, watcher, ARGS, {})

    assert not isinstance(failed.value, StoppedEarly)
    assert str(failed.value) == (
        f"{helm.failures['upgrade']}\n\nPod diagnostics:\nPod web-1 container 'web' waiting: ImagePullBackOff"
    )
    assert watcher.stopped
    assert metric(metrics, "helm_runs_total", operation="upgrade", result="timeout") == 1


async def test_a_fatal_signal_stops_helm_early() -> None:
    helm, watcher, metrics = parts()
    helm.hold_upgrade = True
    step = asyncio.create_task(watched_upgrade(helm, OPTIONS, metrics, watcher, ARGS, {}))
    while "upgrade" not in helm.operations():
        await asyncio.sleep(0.01)

    watcher.fatal.set()
    with pytest.raises(StoppedEarly) as stopped:
        await step

    assert str(stopped.value) == (
        f"helm upgrade --install {RELEASE} stopped early (fail-fast) instead of waiting up to 60 s: "
        "a fatal failure signal"
    )
    assert watcher.stopped
    assert metric(metrics, "helm_runs_total", operation="upgrade", result="cancelled") == 1


async def test_a_cancelled_upgrade_stops_helm_and_the_watcher() -> None:
    helm, watcher, metrics = parts()
    helm.hold_upgrade = True
    step = asyncio.create_task(watched_upgrade(helm, OPTIONS, metrics, watcher, ARGS, {}))
    while "upgrade" not in helm.operations():
        await asyncio.sleep(0.01)

    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step

    assert watcher.stopped
    assert metric(metrics, "helm_runs_total", operation="upgrade", result="cancelled") == 1
