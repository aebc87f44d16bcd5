"""ReleaseWatcher's texts without a cluster: objects are fed as its watches would, through the same
methods; the API client is never called."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from communication_operator.workloads.signals.policy import FailFastPolicy
from communication_operator.workloads.signals.text import describe
from communication_operator.workloads.watcher import ReleaseWatcher

from .kube_objects import POD, RELEASE, container, event, pod

SECRET = "correct horse\tbattery\n  staple"


def _watcher(sent: list[str]) -> ReleaseWatcher:
    async def sink(text: str) -> asyncio.Future[bool] | None:
        sent.append(text)
        return None

    return ReleaseWatcher(
        object(),  # type: ignore[arg-type]  # no request is made
        "octo",
        RELEASE,
        sink,
        policy=FailFastPolicy(config_error_grace_seconds=0.0),
        secrets=[SECRET],
        since=datetime.fromisoformat("2026-05-01T10:00:00Z"),
        clock=lambda: 100.0,
    )


def _leaky_pod(**kwargs: Any) -> dict[str, Any]:
    message = f"couldn't read key {SECRET}\n"
    return pod(containers=[container(waiting=("CreateContainerConfigError", message))], **kwargs)


async def test_progress_snapshot_and_fail_fast_causes_carry_no_secret() -> None:
    sent: list[str] = []
    watcher = _watcher(sent)

    watcher._observe_pod(_leaky_pod(), 100.0)
    watcher._observe_event(event(reason="Failed", message=f"Error: couldn't read key {SECRET}"), 100.0)
    await watcher._evaluate()

    line = f"Pod {POD} container 'web' waiting: CreateContainerConfigError — couldn't read key ***"
    assert sent == [f"{line}\nEvent Pod/{POD}: Failed — Error: couldn't read key ***"]
    assert watcher.snapshot() == sent[0]
    causes = [describe(signal) for signal in watcher.fatal_signals()]
    assert causes == [f"CreateContainerConfigError: pod {POD} container web: couldn't read key ***"]
    assert watcher.fatal.is_set()


async def test_the_snapshot_keeps_pods_deleted_during_the_deploy_but_progress_does_not() -> None:
    sent: list[str] = []
    watcher = _watcher(sent)
    watcher._observe_pod(_leaky_pod(), 100.0)
    await watcher._evaluate()

    watcher._forget_pod(POD, 100.0)  # helm's rollback deleted it
    await watcher._evaluate()

    assert len(sent) == 1, "no progress report for a vanished pod"
    assert watcher.snapshot().startswith(f"Pod {POD} container 'web' waiting: CreateContainerConfigError")
