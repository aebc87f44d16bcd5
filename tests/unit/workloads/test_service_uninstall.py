"""Uninstall and best-effort lookups (issue 13 item 9, issue 12 "Helm behaviour"), with the helm stand-in.

The integration tests (tests/integration/workloads/test_uninstall.py) repeat the uninstall cases with
the real helm on the local cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from communication_operator.contracts import WorkloadUndeployedDto

from .doubles import POOL, RELEASE, TENANT, WORKLOAD, Harness, until

SECRET_KEY = ("octo", f"{RELEASE}-octo-secrets")


def undeploy() -> WorkloadUndeployedDto:
    return WorkloadUndeployedDto(
        tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="x"
    )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    h.fake.history((1, "deployed"))
    return h


async def test_uninstall_argv_is_upstreams_without_wait(harness: Harness) -> None:
    await harness.service.on_workload_undeployed(undeploy())
    await harness.settle()

    (uninstall,) = harness.fake.calls("uninstall")
    assert uninstall.argv == ["uninstall", RELEASE, "--namespace", "octo", "--ignore-not-found"]


async def test_the_release_secret_is_deleted_even_when_uninstall_fails(harness: Harness) -> None:
    harness.secrets.secrets[SECRET_KEY] = {"data": {"k": "v"}}
    harness.fake.set("uninstall", exit=1, stderr="Error: context deadline exceeded\n")

    await harness.service.on_workload_undeployed(undeploy())
    await harness.settle()

    assert harness.secrets.secrets == {}


async def test_a_newer_deploy_waits_for_a_running_uninstall_instead_of_killing_it(harness: Harness) -> None:
    harness.fake.set("uninstall", sleep=1.5)
    await harness.service.on_workload_undeployed(undeploy())
    await until(lambda: harness.fake.calls("uninstall"))

    await harness.deploy()
    await harness.settle()

    assert harness.fake.terminated() == []
    lines = harness.fake.lines()
    (uninstall,) = harness.fake.calls("uninstall")
    (upgrade,) = harness.fake.calls("upgrade")
    end = next(i for i, line in enumerate(lines) if line.startswith(f"END {uninstall.pid} "))
    start = next(i for i, line in enumerate(lines) if line.startswith(f"START {upgrade.pid} "))
    assert end < start, "the deploy's helm started while the uninstall still ran"
    (status,) = harness.hub.statuses()
    assert status.success is True


async def test_shutdown_lets_a_running_uninstall_finish_and_still_deletes_the_secret(
    harness: Harness,
) -> None:
    harness.secrets.secrets[SECRET_KEY] = {"data": {"k": "v"}}
    harness.fake.set("uninstall", sleep=1.0)
    await harness.service.on_workload_undeployed(undeploy())
    await until(lambda: harness.fake.calls("uninstall"))

    await harness.service.shutdown()

    assert harness.fake.terminated() == []
    assert any(line.startswith("END ") and " uninstall 0" in line for line in harness.fake.lines())
    assert harness.secrets.secrets == {}


async def test_a_release_left_uninstalling_is_uninstalled_again_before_the_deploy(harness: Harness) -> None:
    harness.fake.history((1, "deployed"), (2, "uninstalling"), call=1)
    harness.fake.history((1, "deployed"), (2, "uninstalling"), call=2)
    harness.fake.history((1, "deployed"), call=3)

    await harness.deploy()
    await harness.settle()

    assert harness.fake.ops() == [
        "repo-add", "repo-update", "history", "history", "uninstall", "dry-run", "upgrade", "history",
    ]  # fmt: skip
    (progress,) = harness.hub.progress()
    assert progress.message == (
        f"Recovered release {RELEASE} stuck in uninstalling (revision 2) with no helm process running: "
        "finished the interrupted uninstall"
    )
    assert harness.hub.statuses()[0].success is True


@pytest.mark.parametrize(
    "failure",
    [
        {"exit": 1, "stderr": "Error: the server is currently unable to handle the request\n"},
        {"stdout": "<html>"},
    ],
    ids=["failing", "unparseable"],
)
async def test_history_and_list_are_best_effort(harness: Harness, failure: dict[str, object]) -> None:
    harness.fake.set("history", **failure)  # type: ignore[arg-type]
    harness.fake.set("list", **failure)  # type: ignore[arg-type]

    await harness.deploy(is_reconciliation=True)
    await harness.settle()

    assert "upgrade" in harness.fake.ops()
    (status,) = harness.hub.statuses()
    assert status.success is True, status.status_message
    assert status.status_message == "Deployed web"


async def test_a_failed_upgrade_puts_the_previous_secret_content_back(harness: Harness) -> None:
    # Issue 13 item 10: helm rolls the release back; its pods must find the keys they started with.
    previous = {"oauth.clientSecret": "one", "secrets.rabbitmq": "broker"}
    harness.secrets.secrets[SECRET_KEY] = {"data": dict(previous), "labels": {"a": "b"}}
    harness.fake.set("upgrade", exit=1, stderr="Error: UPGRADE FAILED: release failed, rolled back\n")

    await harness.deploy()  # no secret override any more: the key would be gone
    await harness.settle()

    assert harness.secrets.secrets[SECRET_KEY]["data"] == previous
    (status,) = harness.hub.statuses()
    assert status.success is False


async def test_a_failed_first_install_leaves_no_secret(harness: Harness) -> None:
    harness.fake.set("upgrade", exit=1, stderr="Error: INSTALLATION FAILED: context deadline exceeded\n")

    await harness.deploy()
    await harness.settle()

    assert harness.secrets.secrets == {}
