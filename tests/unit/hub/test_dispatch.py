"""Pushes are validated and dispatched; a refused workload push gets one answer, a broken one no crash."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from communication_operator.contracts import ServerMethod, WorkloadDeploymentStatusDto
from communication_operator.hub.dispatch import HubStats, PushDispatcher
from communication_operator.metrics import OperatorMetrics
from communication_operator.workloads.refusals import WorkloadPushRefusals

TENANT = "acme"
POOL = "65f0c0ffee0000000000aaaa"
WORKLOAD = "65f0c0ffee0000000000bbbb"


class RecordingHub:
    def __init__(self) -> None:
        self.reports: list[tuple[ServerMethod, tuple[Any, ...]]] = []

    async def report(self, method: ServerMethod, *args: Any) -> asyncio.Future[bool] | None:
        self.reports.append((method, args))
        return None


def deploy(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantId": TENANT,
        "poolRtId": POOL,
        "workloadName": "web",
        "workloadRtId": WORKLOAD,
        "workloadType": 0,
        "repositoryUrl": "https://charts.example",
        "chartName": "web",
    }
    body.update(fields)
    return body


def wired(metrics: OperatorMetrics | None = None) -> tuple[PushDispatcher, RecordingHub, list[Any]]:
    hub = RecordingHub()
    handled: list[Any] = []

    async def handler(dto: Any) -> None:
        handled.append(dto)

    dispatcher = PushDispatcher(HubStats(), metrics)
    refusals = WorkloadPushRefusals(hub)
    dispatcher.on("WorkloadDeployedAsync", handler, refusals.deploy_refused)
    dispatcher.on("WorkloadUndeployedAsync", handler, refusals.undeploy_refused)
    return dispatcher, hub, handled


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"workloadRtId": WORKLOAD.upper()}, "workloadRtId '65F0C0FFEE0000000000BBBB' is not a runtime id"),
        ({"workloadRtId": WORKLOAD[:23]}, "is not a runtime id (24 lowercase hexadecimal characters)"),
        ({"workloadRtId": "../../etc"}, "workloadRtId '../../etc' is not a runtime id"),
        ({"workloadType": 3}, "field 'workloadType': 3 is not a workload type"),
        ({"tenantId": "a" * 129}, "tenantId is longer than 128 characters"),
    ],
)
async def test_a_refused_deploy_is_reported_failed_once_and_never_handled(
    fields: dict[str, Any], problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = OperatorMetrics()
    dispatcher, hub, handled = wired(metrics)
    with caplog.at_level(logging.WARNING):
        await dispatcher.dispatch("WorkloadDeployedAsync", [deploy(**fields)])
    assert handled == []
    assert len(hub.reports) == 1
    method, (status,) = hub.reports[0]
    assert method is ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS
    assert isinstance(status, WorkloadDeploymentStatusDto)
    assert status.success is False
    assert status.tenant_id == fields.get("tenantId", TENANT)
    assert status.workload_rt_id == fields.get("workloadRtId", WORKLOAD)
    assert status.workload_name == "web"
    assert status.status_message is not None
    assert status.status_message.startswith("Invalid workload: ")
    assert problem in status.status_message
    refusal_lines = [r for r in caplog.records if "refusing" in r.getMessage()]
    assert len(refusal_lines) == 1
    assert 'communication_operator_hub_pushes_refused_total{method="WorkloadDeployedAsync"} 1.0' in (
        metrics.exposition().decode()
    )


async def test_a_deploy_whose_ids_cannot_be_read_is_logged_once_and_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher, hub, handled = wired()
    with caplog.at_level(logging.WARNING):
        await dispatcher.dispatch("WorkloadDeployedAsync", [deploy(tenantId=" ", workloadRtId=7)])
    assert hub.reports == []
    assert handled == []
    (line,) = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
    assert "no status can be reported" in line


async def test_a_refused_undeploy_is_logged_once_with_context_and_not_acted_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher, hub, handled = wired()
    with caplog.at_level(logging.WARNING):
        await dispatcher.dispatch(
            "WorkloadUndeployedAsync", [{"tenantId": TENANT, "poolRtId": POOL, "workloadRtId": "../../etc"}]
        )
    assert hub.reports == []
    assert handled == []
    (record,) = [r for r in caplog.records if "refusing" in r.getMessage()]
    assert "'../../etc'" in record.getMessage()
    assert record.__dict__.get("tenant") == TENANT
    assert record.__dict__.get("pool") == POOL


async def test_a_valid_push_reaches_its_handler() -> None:
    dispatcher, hub, handled = wired()
    await dispatcher.dispatch("WorkloadDeployedAsync", [deploy()])
    assert [dto.workload_rt_id for dto in handled] == [WORKLOAD]
    assert hub.reports == []


async def test_nothing_a_push_carries_ends_the_dispatch_loop(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher, _, handled = wired()
    ready = asyncio.Event()
    ready.set()
    loop = asyncio.create_task(dispatcher.run(ready))
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    try:
        dispatcher.enqueue("WorkloadDeployedAsync", [deep])
        dispatcher.enqueue("WorkloadDeployedAsync", [deploy()])
        async with asyncio.timeout(5):
            while not handled:
                await asyncio.sleep(0.01)
        assert not loop.done()
    finally:
        loop.cancel()
