"""The helm watchdog: a run past its deadline is stopped (SIGTERM, then SIGKILL) and fails (finding 12).

The stand-in helm is a real child process that hangs as a helm waiting on an unreachable API server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from communication_operator.contracts import WorkloadUndeployedDto
from communication_operator.workloads.helm import HelmCli, HelmDeadlineExceeded

from .doubles import POOL, RELEASE, TENANT, WORKLOAD, Harness, until
from .fake_helm import FakeHelm

SECRET_KEY = ("octo", f"{RELEASE}-octo-secrets")


@pytest.fixture
def fake_helm(tmp_path: Path) -> FakeHelm:
    return FakeHelm(tmp_path / "helm")


def cli(fake: FakeHelm, **fields: float) -> HelmCli:
    return HelmCli(binary=str(fake.binary), **fields)


async def test_a_hung_run_without_timeout_is_terminated_at_the_operation_deadline(
    fake_helm: FakeHelm,
) -> None:
    fake_helm.set("list", sleep=60)
    started = time.monotonic()

    with pytest.raises(HelmDeadlineExceeded) as raised:
        await cli(fake_helm, operation_deadline=0.5).list_releases("octo")

    assert time.monotonic() - started < 5
    assert raised.value.timed_out
    assert str(raised.value) == "helm list failed: no result after 0.5 s; stopped by the operator"
    assert fake_helm.terminated() == ["list"]
    assert fake_helm.alive() == []


async def test_a_run_ignoring_sigterm_is_killed_after_the_grace_period(fake_helm: FakeHelm) -> None:
    fake_helm.set("repo-update", sleep=60, ignore_term=True)

    with pytest.raises(HelmDeadlineExceeded):
        await cli(fake_helm, operation_deadline=0.5, kill_grace=0.5).repo_update("octo-abc")

    await until(lambda: fake_helm.alive() == [])


async def test_a_run_with_a_timeout_gets_that_timeout_plus_the_margin(fake_helm: FakeHelm) -> None:
    fake_helm.set("rollback", sleep=1.0)
    helm = cli(fake_helm, operation_deadline=0.2, deadline_margin=0.3)

    await helm.rollback("r", "octo", 1, timeout_seconds=2)  # 2 s + margin: not stopped after 1 s
    with pytest.raises(HelmDeadlineExceeded):
        await helm.rollback("r", "octo", 1, timeout_seconds=0)  # 0 s + 0.3 s margin


async def test_a_hung_uninstall_is_given_up_the_secret_deleted_and_the_next_deploy_recovers(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    h.helm = HelmCli(binary=str(h.fake.binary), kill_grace=1.0, operation_deadline=1.0)
    h.rebuild()
    h.secrets.secrets[SECRET_KEY] = {"data": {"k": "v"}}
    h.fake.set("uninstall", sleep=60, call=1)
    await h.service.on_workload_undeployed(
        WorkloadUndeployedDto(tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="x")
    )
    await until(lambda: h.fake.calls("uninstall"))

    async with asyncio.timeout(10):
        await h.settle()
    assert h.fake.terminated() == ["uninstall"]
    assert h.secrets.secrets == {}
    assert h.service.busy_releases() == []

    # The killed uninstall left the release `uninstalling`: the next deploy finishes it, then installs.
    h.fake.history((2, "uninstalling"), call=1)
    h.fake.history((2, "uninstalling"), call=2)
    h.fake.history((1, "deployed"), call=3)
    await h.deploy()
    await h.settle()

    assert len(h.fake.calls("uninstall")) == 2
    (status,) = h.hub.statuses()
    assert status.success is True
