"""Serialisation of helm runs per release when several pushes for one release arrive in a row."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from communication_operator.contracts import WorkloadUndeployedDto
from communication_operator.workloads.watcher import ProgressSink

from .doubles import POOL, TENANT, WORKLOAD, FakeWatcher, Harness, until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_third_deploy_waits_for_the_first_helm_even_when_the_queued_second_is_cancelled(
    tmp_path: Path,
) -> None:
    # The first helm ignores SIGTERM, so it lingers for the whole kill grace after being cancelled.
    h = Harness(tmp_path, kill_grace=2.0)
    h.fake.history((3, "deployed"))
    h.fake.set("upgrade", sleep=30, ignore_term=True, call=1)
    await h.deploy(chart_version="0.1.0")
    await until(lambda: h.fake.calls("upgrade"))
    (first,) = h.fake.calls("upgrade")
    calls_before = len(h.fake.calls())

    await h.deploy(chart_version="0.2.0")  # queued behind the first, which it cancels
    await h.deploy(chart_version="0.3.0")  # cancels the queued second while the first still runs
    await until(lambda: len(h.fake.calls()) > calls_before)

    assert not _alive(first.pid), "a helm of the newest deploy started while the first helm still ran"
    await h.settle()
    upgrades = h.fake.calls("upgrade")
    assert [call.argv[call.argv.index("--version") + 1] for call in upgrades] == ["0.1.0", "0.3.0"]
    (status,) = h.hub.statuses()
    assert status.success is True


async def test_an_undeploy_after_a_queued_deploy_waits_for_the_running_helm(tmp_path: Path) -> None:
    h = Harness(tmp_path, kill_grace=2.0)
    h.fake.history((3, "deployed"))
    h.fake.set("upgrade", sleep=30, ignore_term=True, call=1)
    await h.deploy(chart_version="0.1.0")
    await until(lambda: h.fake.calls("upgrade"))
    (first,) = h.fake.calls("upgrade")

    await h.deploy(chart_version="0.2.0")
    await h.service.on_workload_undeployed(
        WorkloadUndeployedDto(tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="x")
    )
    await until(lambda: h.fake.calls("uninstall"), timeout=10)

    assert not _alive(first.pid), "helm uninstall started while the cancelled upgrade still ran"
    await h.settle()
    assert h.hub.statuses() == []


class _SlowStartWatcher(FakeWatcher):
    """A watcher whose initial lists take long (a slow API server): start() is still waiting."""

    async def start(self) -> None:
        self.started.set()
        await asyncio.sleep(30)


async def test_a_deploy_cancelled_while_its_watcher_starts_stops_that_watcher(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.fake.history((3, "deployed"))

    def watcher(release: str, namespace: str, sink: ProgressSink, secrets: Sequence[str]) -> FakeWatcher:
        made = (_SlowStartWatcher if not h.watchers else FakeWatcher)(release, namespace, sink, secrets)
        h.watchers.append(made)
        return made

    h.watcher_factory = watcher
    h.rebuild()
    await h.deploy(chart_version="0.1.0")
    await until(lambda: h.watchers and h.watchers[0].started.is_set())

    await h.deploy(chart_version="0.2.0")
    await h.settle()

    first, second = h.watchers
    # Left running, its watches would go on forever and report progress after the next status.
    assert first.stopped, "the cancelled deploy left its watcher running"
    assert second.stopped
    (status,) = h.hub.statuses()
    assert status.success is True
