"""The deploy and undeploy counters (what DeployStats used to count for tests), with the stand-in helm,
and their names in the operations reference."""

from __future__ import annotations

import re
from pathlib import Path

from communication_operator.contracts import WorkloadUndeployedDto
from communication_operator.metrics import NAMESPACE, OperatorMetrics

from .doubles import POOL, TENANT, WORKLOAD, Harness, deploys, metric

OPERATIONS_DOC = Path(__file__).parents[3] / "docs" / "operations.md"


async def test_a_deploy_a_failed_deploy_and_an_undeploy_are_counted(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.fake.history((1, "deployed"))
    h.fake.set("upgrade", exit=1, stderr="Error: boom\n", call=2)

    await h.deploy(chart_version="0.1.0")
    await h.settle()
    await h.deploy(chart_version="0.2.0")
    await h.settle()
    await h.deploy(chart_version="not a version!")
    await h.settle()
    await h.service.on_workload_undeployed(
        WorkloadUndeployedDto(tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="x")
    )
    await h.settle()

    metrics = h.service.metrics
    assert [status.success for status in h.hub.statuses()] == [True, False, False]
    assert metric(metrics, "workload_deploys_started_total") == 3
    assert (deploys(metrics, "success"), deploys(metrics, "failure"), deploys(metrics, "cancelled")) == (
        1,
        2,
        0,
    )
    assert metric(metrics, "workload_undeploys_total", result="success") == 1
    assert metric(metrics, "helm_slots_in_use") == 0
    assert h.service.scheduler.peak_running == 1


def test_every_workload_metric_is_in_the_operations_reference() -> None:
    documented = set(re.findall(r"`(communication_operator_[a-z_]+)`", OPERATIONS_DOC.read_text()))
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in OperatorMetrics().registry.collect()
        if family.name.startswith(f"{NAMESPACE}_workload")
        or family.name.startswith(f"{NAMESPACE}_helm_slots")
    }
    assert len(exported) == 6
    assert exported <= documented
