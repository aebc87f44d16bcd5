"""Long-lived tasks are supervised: a death is logged, counted, and turns /healthz into HTTP 500."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import kopf
import pytest
from kopf._core.engines.indexing import OperatorIndexers
from kopf._core.engines.probing import health_reporter

from communication_operator.handlers import build_registry
from communication_operator.hub import HubConnection, HubOptions
from communication_operator.metrics import OperatorMetrics
from communication_operator.pools import PoolRegistry
from communication_operator.redaction import remember_secrets
from communication_operator.runtime import Runtime
from communication_operator.supervision import TaskSupervisor


async def dies(message: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


async def test_a_task_that_dies_is_logged_counted_and_makes_the_supervisor_unhealthy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = OperatorMetrics()
    supervisor = TaskSupervisor(metrics)
    with caplog.at_level(logging.ERROR):
        task = supervisor.spawn(dies("surrogates not allowed"), "hub-outbox")
        with contextlib.suppress(ValueError):
            await task
        await asyncio.sleep(0)
    assert not supervisor.healthy
    assert supervisor.problems() == ["hub-outbox died: ValueError: surrogates not allowed"]
    (record,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "hub-outbox" in record.getMessage()
    assert record.exc_info is not None
    exposition = metrics.exposition().decode()
    assert 'communication_operator_background_task_failures_total{task="hub-outbox"} 1.0' in exposition


async def test_cancelled_and_finished_tasks_are_not_failures() -> None:
    supervisor = TaskSupervisor()
    forever = supervisor.spawn(asyncio.Event().wait(), "forever")  # type: ignore[arg-type]
    done = supervisor.spawn(asyncio.sleep(0), "done")
    await done
    forever.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await forever
    assert supervisor.healthy
    assert supervisor.problems() == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def healthz(supervisor: TaskSupervisor) -> AsyncIterator[str]:
    """kopf's own liveness server with this operator's probe handlers, for a context using ``supervisor``."""
    hub = HubConnection(HubOptions(url="http://127.0.0.1:9"))
    context = Runtime(
        settings=cast(Any, None),
        kube=cast(Any, None),
        objects=cast(Any, None),
        hub=hub,
        registry=PoolRegistry(),
        status=cast(Any, None),
        registration=cast(Any, None),
        provisioner=None,
        metrics=OperatorMetrics(),
        supervisor=supervisor,
    )
    port = free_port()
    ready = asyncio.Event()
    server = asyncio.create_task(
        health_reporter(
            f"http://127.0.0.1:{port}/healthz",
            memo=kopf.Memo(context=context),
            indices=OperatorIndexers().indices,
            registry=build_registry(),
            settings=kopf.OperatorSettings(),
            ready_flag=ready,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 5)
        yield f"http://127.0.0.1:{port}/healthz"
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def test_healthz_is_ok_while_every_supervised_task_lives() -> None:
    supervisor = TaskSupervisor()
    forever = supervisor.spawn(asyncio.Event().wait(), "hub-outbox")  # type: ignore[arg-type]
    try:
        async with healthz(supervisor) as url:
            status, body = await get(url)
        assert status == 200, body
        assert '"tasks": {"alive": true}' in body
    finally:
        forever.cancel()


async def test_healthz_fails_once_a_supervised_task_died() -> None:
    supervisor = TaskSupervisor()
    with contextlib.suppress(ValueError):
        await supervisor.spawn(dies("boom"), "hub-outbox")
    await asyncio.sleep(0)
    async with healthz(supervisor) as url:
        status, _ = await get(url)
    assert status == 500


async def test_a_dead_tasks_problem_is_redacted_before_it_is_cut() -> None:
    # /healthz shows the problem; no log formatter redacts it. The secret straddles the cut.
    secret = "supervised-s3cret-on-the-cut"
    remember_secrets([secret])
    supervisor = TaskSupervisor()
    task = supervisor.spawn(dies("x" * 270 + secret + "y" * 1000), "hub-outbox")
    with contextlib.suppress(ValueError):
        await task
    await asyncio.sleep(0)
    (problem,) = supervisor.problems()
    assert secret[:8] not in problem
    assert problem.startswith("hub-outbox died: ValueError: xxx")
    assert problem.endswith("…")
    assert len(problem) == len("hub-outbox died: ") + 300
