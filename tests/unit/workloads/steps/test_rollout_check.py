"""Step rollout check: after helm says "deployed", Deployments that do not run their spec yet are logged
(helm 4's wait may end early, docs/workloads.md); the step never changes the deploy's outcome."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from communication_operator.workloads.rollout import unfinished_rollout
from communication_operator.workloads.steps.rollout_check import check_rollout

from ..doubles import RELEASE, Harness, ScriptedHelm


def deployment(
    *,
    generation: int = 2,
    observed: int | None = 2,
    replicas: int | None = 1,
    updated: int | None = 1,
    available: int | None = 1,
    paused: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"paused": paused} if paused else {}
    if replicas is not None:
        spec["replicas"] = replicas
    status = {
        key: value
        for key, value in (
            ("observedGeneration", observed),
            ("updatedReplicas", updated),
            ("availableReplicas", available),
        )
        if value is not None
    }
    return {"metadata": {"name": "web", "generation": generation}, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"observed": 1}, "Deployment web: generation 2 not observed yet (observed 1)"),
        ({"observed": None}, "Deployment web: generation 2 not observed yet (observed 0)"),
        # The early success seen in CI: a new ReplicaSet whose pod never became Ready beside the old one.
        ({"updated": 1, "available": 0}, "Deployment web: 1 of 1 replica(s) updated, 0 available"),
        ({"updated": 0, "available": 1}, "Deployment web: 0 of 1 replica(s) updated, 1 available"),
        # spec.replicas left out: the API server's default is 1.
        (
            {"replicas": None, "updated": None, "available": None},
            "Deployment web: 0 of 1 replica(s) updated, 0 available",
        ),
        ({"replicas": 0, "updated": None, "available": None}, None),  # hibernated: nothing to run
        ({"replicas": 3, "updated": 3, "available": 4}, None),  # surplus during a scale-down is fine
        ({"observed": 1, "paused": True}, None),  # helm does not wait for paused Deployments either
    ],
)
def test_what_is_missing_for_a_deployment_to_run_its_spec(
    fields: dict[str, Any], expected: str | None
) -> None:
    assert unfinished_rollout(deployment(**fields)) == expected


class Rollouts:
    def __init__(self, unfinished: list[str]) -> None:
        self.unfinished = unfinished
        self.asked: list[tuple[str, str]] = []

    async def unfinished_rollouts(self, namespace: str, release: str) -> list[str]:
        self.asked.append((namespace, release))
        return self.unfinished


async def test_an_unfinished_rollout_is_one_warning_naming_the_release_and_what_is_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rollouts = Rollouts(["Deployment web: 1 of 1 replica(s) updated, 0 available"])
    with caplog.at_level(logging.INFO, logger="communication_operator.workloads.steps.rollout_check"):
        await check_rollout(ScriptedHelm(), rollouts, RELEASE, "octo", {"release": RELEASE})
    assert rollouts.asked == [("octo", RELEASE)]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"release {RELEASE}: helm reported it deployed, but its rollout is not finished: Deployment web: "
        "1 of 1 replica(s) updated, 0 available. helm's wait may have ended early (docs/workloads.md, "
        "known limits); the pods' state shows what runs"
    )


async def test_a_finished_rollout_or_no_reader_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await check_rollout(ScriptedHelm(), Rollouts([]), RELEASE, "octo", {})
        await check_rollout(ScriptedHelm(), None, RELEASE, "octo", {})
    assert caplog.records == []


async def test_on_helm_3_nothing_is_checked() -> None:
    """helm 3's wait ends by design with ``replicas - maxUnavailable`` ready pods: no warning for that."""
    rollouts = Rollouts(["Deployment web: 4 of 4 replica(s) updated, 3 available"])
    await check_rollout(ScriptedHelm(major=3), rollouts, RELEASE, "octo", {})
    assert rollouts.asked == []


async def test_a_deploy_helm_calls_deployed_is_reported_deployed_and_its_unfinished_rollout_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path)
    h.fake.history((2, "deployed"))
    h.rollouts = rollouts = Rollouts(["Deployment web: 1 of 1 replica(s) updated, 0 available"])
    h.rebuild()

    with caplog.at_level(logging.WARNING):
        await h.deploy()
        await h.settle()

    (status,) = h.hub.statuses()
    assert status.success, status  # the report stays helm's
    assert rollouts.asked == [("octo", RELEASE)]
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("rollout_check")]
    assert warnings == [
        f"release {RELEASE}: helm reported it deployed, but its rollout is not finished: Deployment web: "
        "1 of 1 replica(s) updated, 0 available. helm's wait may have ended early (docs/workloads.md, "
        "known limits); the pods' state shows what runs"
    ]


async def test_a_failed_deploy_is_not_checked(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.fake.set("upgrade", exit=1, stderr="Error: UPGRADE FAILED: boom")
    h.rollouts = rollouts = Rollouts(["never asked"])
    h.rebuild()

    await h.deploy()
    await h.settle()

    (status,) = h.hub.statuses()
    assert not status.success
    assert rollouts.asked == []
