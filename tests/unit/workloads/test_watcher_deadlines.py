"""The fail-fast-by-persistence loop survives an error in one round (review finding 14)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from communication_operator.workloads import watcher as watcher_module
from communication_operator.workloads.signals.policy import FailFastPolicy
from communication_operator.workloads.watcher import ReleaseWatcher

from .kube_objects import RELEASE


async def test_an_error_in_one_round_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watcher_module, "DEADLINE_RETRY_SECONDS", 0.01, raising=False)

    async def sink(text: str) -> asyncio.Future[bool] | None:
        return None

    watcher = ReleaseWatcher(
        object(),  # type: ignore[arg-type]  # no request is made
        "octo",
        RELEASE,
        sink,
        policy=FailFastPolicy(),
        clock=lambda: 100.0,
    )
    rounds: list[int] = []
    real_next_deadline = watcher._signals.next_deadline

    def next_deadline(now: float) -> Any:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("a bug in one round")
        return real_next_deadline(now)

    watcher._signals.next_deadline = next_deadline  # type: ignore[method-assign]
    task = asyncio.create_task(watcher._deadlines())
    try:
        await asyncio.sleep(0.1)
        assert not task.done(), "the loop died"
        watcher._wake.set()
        await asyncio.sleep(0.05)
        assert len(rounds) >= 3
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert RELEASE in errors[0].getMessage()
    finally:
        task.cancel()
