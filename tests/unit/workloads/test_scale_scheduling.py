"""A scale is serialised with the helm runs of its release (workloads/scale.py, WorkloadService._schedule).

The patcher here records when it is called and whether a helm process of the release is running at
that moment; the real patch against a kube-apiserver is in tests/integration/workloads/test_scale.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from communication_operator.contracts import ScaleWorkloadDto, ServerMethod, WorkloadScaleStatusDto
from communication_operator.hub.dispatch import HubStats, PushDispatcher
from communication_operator.workloads.scale import ScaleHandler, ScaleTarget

from .doubles import POOL, TENANT, WORKLOAD, Harness, deploys, until


class RecordingPatcher:
    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.calls: list[tuple[int, int]] = []  # (replicas, helm calls made before this patch)

    async def scale_release(self, namespace: str, release: str, replicas: int) -> list[ScaleTarget]:
        self.calls.append((replicas, len(self.harness.fake.calls())))
        return [ScaleTarget("Deployment", f"{release}-web")]


def scale(replicas: int) -> ScaleWorkloadDto:
    return ScaleWorkloadDto(
        tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="x", replicas=replicas
    )


def acks(h: Harness) -> list[WorkloadScaleStatusDto]:
    return [dto for method, dto in h.hub.reports if method is ServerMethod.REPORT_WORKLOAD_SCALE_STATUS]


async def test_a_newer_deploy_cancels_the_deploy_behind_a_queued_scale_but_not_the_scale(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, kill_grace=2.0)
    h.fake.history((3, "deployed"))
    h.fake.set("upgrade", sleep=30, call=1)
    patcher = RecordingPatcher(h)
    handler = ScaleHandler(h.service, h.hub, patcher)
    await h.deploy(chart_version="0.1.0")
    await until(lambda: h.fake.calls("upgrade"))

    await handler.on_scale_workload(scale(0))  # queued behind the running upgrade
    assert patcher.calls == []
    await h.deploy(chart_version="0.2.0")  # supersedes the first deploy, waits for the scale
    await h.settle()

    upgrades = h.fake.calls("upgrade")
    assert [c.argv[c.argv.index("--version") + 1] for c in upgrades] == ["0.1.0", "0.2.0"]
    ((replicas, helm_calls_before),) = patcher.calls
    assert replicas == 0
    ops = h.fake.ops()
    # The scale ran after the first upgrade had stopped and before the second deploy's helm started.
    assert ops[helm_calls_before - 1] == "upgrade"
    assert ops[:helm_calls_before].count("upgrade") == 1
    assert [(a.replicas, a.success) for a in acks(h)] == [(0, True)]
    assert deploys(h.service.metrics, "cancelled") == 1


async def test_two_scales_in_a_row_both_run_and_are_acknowledged_in_order(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    patcher = RecordingPatcher(h)
    handler = ScaleHandler(h.service, h.hub, patcher)

    await handler.on_scale_workload(scale(0))
    await handler.on_scale_workload(scale(1))
    await h.settle()

    assert [c[0] for c in patcher.calls] == [0, 1]
    assert [a.replicas for a in acks(h)] == [0, 1]
    assert (
        acks(h)[1].status_message
        == f"Scaled Deployment/{TENANT}-{WORKLOAD}-web of release {TENANT}-{WORKLOAD} to 1 replica(s)"
    )


async def test_negative_replicas_are_refused_with_a_failed_ack_and_nothing_patched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    h = Harness(tmp_path)
    patcher = RecordingPatcher(h)
    handler = ScaleHandler(h.service, h.hub, patcher)

    await handler.on_scale_workload(scale(-1))
    await h.settle()

    assert patcher.calls == []
    (ack,) = acks(h)
    assert (ack.success, ack.status_message) == (False, "Invalid scale: replicas must be 0 or more, got -1")


async def test_a_scale_after_shutdown_is_ignored(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    patcher = RecordingPatcher(h)
    handler = ScaleHandler(h.service, h.hub, patcher)
    await h.service.shutdown()

    await handler.on_scale_workload(scale(1))

    assert patcher.calls == []
    assert acks(h) == []


async def test_a_scale_push_that_fails_validation_is_acknowledged_failed_once(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    patcher = RecordingPatcher(h)
    handler = ScaleHandler(h.service, h.hub, patcher)
    dispatcher = PushDispatcher(HubStats())
    dispatcher.on("ScaleWorkloadAsync", handler.on_scale_workload, handler.scale_refused)
    body = {
        "tenantId": TENANT,
        "poolRtId": POOL,
        "workloadRtId": "../../etc",
        "workloadName": "x",
        "replicas": 0,
    }

    await dispatcher.dispatch("ScaleWorkloadAsync", [body])
    await h.settle()

    assert patcher.calls == []
    (ack,) = acks(h)
    assert (ack.success, ack.workload_rt_id, ack.replicas) == (False, "../../etc", 0)
    assert ack.status_message == (
        "Invalid workload: workloadRtId '../../etc' is not a runtime id (24 lowercase hexadecimal characters)"
    )
