"""WorkloadService with a stand-in helm process, an in-memory hub, Secret store and watcher.

The helm stand-in is a real child process (fake_helm.py), so cancellation, SIGTERM, ordering and the
concurrency bound are exercised for real; the integration tests repeat the key cases with real helm.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from communication_operator.contracts import (
    ServerMethod,
    ValueOverrideDto,
    WorkloadUndeployedDto,
)
from communication_operator.redaction import KNOWN_SECRETS
from communication_operator.workloads.signals.model import Signal, SignalKind
from communication_operator.workloads.values import OperatorContext

from .doubles import (
    ALIAS,
    BROKER_PASSWORD,
    POOL,
    RELEASE,
    REPO,
    TENANT,
    WORKLOAD,
    Harness,
    deploys,
    metric,
    until,
)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    h.fake.history((3, "deployed"))
    return h


async def test_successful_deploy_runs_helm_in_order_and_reports_the_revision(harness: Harness) -> None:
    await harness.deploy(
        values_yaml="replicaCount: 2\n", values=[ValueOverrideDto(path="config.tier", value="007")]
    )
    await harness.settle()

    assert harness.fake.ops() == ["repo-add", "repo-update", "history", "dry-run", "upgrade", "history"]
    add, update = harness.fake.calls("repo-add")[0], harness.fake.calls("repo-update")[0]
    assert add.argv == ["repo", "add", ALIAS, REPO, "--force-update"]
    assert update.argv == ["repo", "update", ALIAS]
    (upgrade,) = harness.fake.calls("upgrade")
    argv = upgrade.argv
    assert argv[:6] == ["upgrade", "--install", RELEASE, f"{ALIAS}/web", "--namespace", "octo"]
    assert "--version" not in argv
    assert argv[argv.index("--timeout") + 1] == "60s"
    assert argv[argv.index("--history-max") + 1] == "5"
    assert {"--rollback-on-failure", "--wait=watcher"} <= set(argv)
    labels = argv[argv.index("--labels") + 1].split(",")
    assert labels == [
        "octo-mesh.meshmakers.io/managed-by=communication-operator",
        f"octo-mesh.meshmakers.io/pool-rt-id={POOL}",
        f"octo-mesh.meshmakers.io/tenant={TENANT}",
        f"octo-mesh.meshmakers.io/workload-rt-id={WORKLOAD}",
    ]
    files = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-f"]
    assert [Path(f).name for f in files] == [
        "values-context.yaml",
        "values-base.yaml",
        "values-overrides.yaml",
    ]
    (status,) = harness.hub.statuses()
    assert status.success is True
    assert status.status_message == "Deployed revision 3 of web 0.1.0"
    assert (status.tenant_id, status.workload_rt_id, status.workload_name) == (
        TENANT,
        WORKLOAD,
        "Mesh Adapter",
    )


async def test_values_files_are_private_quoted_and_removed_afterwards(harness: Harness) -> None:
    await harness.deploy(values=[ValueOverrideDto(path="config.tier", value="650000000000000000000001")])
    await harness.settle()

    files = harness.fake.files()
    assert files, "helm got no values files"
    assert {mode for mode, _ in files} == {"600"}
    assert all(not Path(path).exists() for _, path in files)
    assert not Path(files[0][1]).parent.exists()
    assert '"tier": "650000000000000000000001"' in harness.fake.captured("values-overrides.yaml")
    assert '"adapterRtId": "65f0c0ffee0000000000bbbb"' in harness.fake.captured("values-context.yaml")


async def test_secrets_go_to_the_release_secret_and_never_into_files_or_reports(harness: Harness) -> None:
    secret = "very-secret-value-42"
    harness.fake.set("upgrade", sleep=0.5, exit=1, stderr=f"Error: admission webhook said {secret} is bad\n")

    await harness.deploy(
        values=[ValueOverrideDto(path="oauth.clientSecret", value=secret, is_secret=True)],
        repository_username="reader",
        repository_password="repo-pa55word",
    )
    # What helm runs with (the failed first install then removes the Secret again).
    await until(lambda: harness.fake.calls("upgrade"))
    stored = harness.secrets.secrets[("octo", f"{RELEASE}-octo-secrets")]
    await harness.settle()

    assert stored["data"] == {"oauth.clientSecret": secret, "secrets.rabbitmq": BROKER_PASSWORD}
    assert stored["labels"]["octo-mesh.meshmakers.io/workload-rt-id"] == WORKLOAD
    assert stored["workload"] == "Mesh Adapter"
    overrides = harness.fake.captured("values-overrides.yaml")
    assert secret not in overrides
    assert BROKER_PASSWORD not in overrides
    assert '"name": "' + f"{RELEASE}-octo-secrets" in overrides
    assert harness.fake.stdin("repo-add") == "repo-pa55word"
    (status,) = harness.hub.statuses()
    assert status.success is False
    assert status.status_message is not None
    assert "admission webhook said *** is bad" in status.status_message
    for text in harness.hub.texts():
        assert secret not in text
        assert "repo-pa55word" not in text


async def test_without_secret_data_a_leftover_release_secret_is_deleted(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.values = OperatorContext(pool_namespace="octo")  # no broker password: nothing secret
    h.rebuild()
    h.fake.history((1, "deployed"))
    h.secrets.secrets[("octo", f"{RELEASE}-octo-secrets")] = {"data": {"old": "x"}}

    await h.deploy()
    await h.settle()

    assert h.secrets.operations == [("delete", f"{RELEASE}-octo-secrets")]
    assert h.secrets.secrets == {}


async def test_helm_failure_reports_error_with_diagnostics_after_the_last_progress(harness: Harness) -> None:
    harness.fake.set(
        "upgrade", sleep=0.5, exit=1, stderr="Error: UPGRADE FAILED: context deadline exceeded\n"
    )

    await harness.deploy()
    await until(lambda: harness.watchers and harness.watchers[0].started.is_set())
    await harness.watchers[0].emit("ImagePullBackOff: pod x container web: Back-off pulling image")
    await harness.settle()

    kinds = [method for method, _ in harness.hub.reports]
    assert kinds == [
        ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS,
        ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS,
    ]
    (status,) = harness.hub.statuses()
    assert status.success is False
    assert status.status_message == (
        f"helm upgrade --install {RELEASE} failed with exit code 1. stderr: "
        "Error: UPGRADE FAILED: context deadline exceeded"
        "\n\nPod diagnostics:\nImagePullBackOff: pod x container web: Back-off pulling image"
    )
    assert harness.watchers[0].stopped


async def test_a_fatal_signal_stops_helm_early_and_fails_with_the_cause(harness: Harness) -> None:
    harness.fake.set("upgrade", sleep=30)
    await harness.deploy()
    await until(lambda: harness.fake.calls("upgrade"))
    watcher = harness.watchers[0]
    signal = Signal(
        SignalKind.IMAGE_PULL_BACK_OFF,
        "Pod",
        "web-1",
        "ImagePullBackOff",
        "manifest unknown",
        container="web",
    )
    watcher.fatal_list = (signal,)
    started = time.monotonic()
    await watcher.emit("ImagePullBackOff: pod web-1 container web: manifest unknown")
    watcher.fatal.set()
    await harness.settle()

    assert time.monotonic() - started < 5
    assert harness.fake.terminated() == ["upgrade"]
    (status,) = harness.hub.statuses()
    assert status.success is False
    assert status.status_message is not None
    assert status.status_message.startswith(
        f"helm upgrade --install {RELEASE} stopped early (fail-fast) instead of waiting up to 60 s: "
        "ImagePullBackOff: pod web-1 container web: manifest unknown"
    )
    assert status.status_message.endswith(
        "\n\nPod diagnostics:\nImagePullBackOff: pod web-1 container web: manifest unknown"
    )
    assert metric(harness.service.metrics, "workload_deploys_stopped_early_total") == 1


async def test_a_newer_deploy_cancels_the_older_one_without_overlap_or_stale_status(harness: Harness) -> None:
    harness.fake.set("upgrade", sleep=30, call=1)
    await harness.deploy(chart_version="0.1.0")
    await until(lambda: harness.fake.calls("upgrade"))

    await harness.deploy(chart_version="0.2.0")
    await harness.settle()

    first, second = harness.fake.calls("upgrade")
    assert "0.1.0" in first.argv
    assert "0.2.0" in second.argv
    lines = harness.fake.lines()
    term_index = next(i for i, line in enumerate(lines) if line.startswith(f"TERM {first.pid} "))
    second_index = next(i for i, line in enumerate(lines) if line.startswith(f"START {second.pid} "))
    assert term_index < second_index, "the newer helm started before the older one had stopped"
    (status,) = harness.hub.statuses()  # the cancelled deploy reports nothing
    assert status.success is True
    assert deploys(harness.service.metrics, "cancelled") == 1


async def test_undeploy_cancels_an_inflight_deploy_then_uninstalls_and_deletes_the_secret(
    harness: Harness,
) -> None:
    harness.fake.set("upgrade", sleep=30)
    await harness.deploy()
    await until(lambda: harness.fake.calls("upgrade"))
    assert ("octo", f"{RELEASE}-octo-secrets") in harness.secrets.secrets

    await harness.service.on_workload_undeployed(
        WorkloadUndeployedDto(tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="x")
    )
    await harness.settle()

    assert harness.fake.terminated() == ["upgrade"]
    (uninstall,) = harness.fake.calls("uninstall")
    assert uninstall.argv[:5] == ["uninstall", RELEASE, "--namespace", "octo", "--ignore-not-found"]
    assert harness.secrets.secrets == {}
    assert harness.hub.statuses() == []


async def test_concurrency_is_bounded_and_every_deploy_reports(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_concurrent=2)
    h.fake.history((1, "deployed"))
    h.fake.set("upgrade", sleep=0.3)

    for index in range(6):
        await h.deploy(workload_rt_id=f"65f0c0ffee000000000000{index:02d}")
    await h.settle()

    assert len(h.hub.statuses()) == 6
    assert all(status.success for status in h.hub.statuses())
    assert h.fake.peak_concurrency() <= 2
    assert h.fake.peak_concurrency("upgrade") == 2
    assert h.service.scheduler.peak_running == 2


async def test_shutdown_stops_helm_and_reports_nothing(harness: Harness) -> None:
    harness.fake.set("upgrade", sleep=30)
    await harness.deploy()
    await until(lambda: harness.fake.calls("upgrade"))

    async with asyncio.timeout(10):
        await harness.service.shutdown()

    assert harness.fake.terminated() == ["upgrade"]
    assert harness.fake.alive() == []
    assert harness.hub.statuses() == []
    await harness.deploy()  # ignored after shutdown
    assert harness.service.busy_releases() == []


@pytest.mark.parametrize(
    ("dto_fields", "expected"),
    [
        (
            {"repository_url": "ftp://charts.example"},
            "Invalid workload: repositoryUrl 'ftp://charts.example' has unsupported",
        ),
        ({"chart_name": "../web"}, "Invalid workload: chartName '../web' is not a chart name"),
        ({"chart_version": "--devel"}, "Invalid workload: chartVersion '--devel' is not a version"),
        ({"workload_rt_id": "  "}, "Invalid workload: workloadRtId is blank"),
        (
            {
                "values": [
                    ValueOverrideDto(path="image", value="a"),
                    ValueOverrideDto(path="image.tag", value="b"),
                ]
            },
            "Invalid workload: override paths 'image' and 'image.tag' conflict",
        ),
    ],
)
async def test_invalid_workloads_fail_with_a_clear_message_and_no_helm(
    harness: Harness, dto_fields: dict[str, Any], expected: str
) -> None:
    await harness.deploy(**dto_fields)
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.success is False
    assert status.status_message is not None
    assert status.status_message.startswith(expected)
    assert harness.fake.calls() == []


async def test_unreachable_repository_fails_naming_the_repository(harness: Harness) -> None:
    harness.fake.set(
        "repo-add",
        exit=1,
        stderr='Error: looks like "https://charts.example/stable" is not a valid chart repository\n',
    )

    await harness.deploy()
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.status_message == (
        f"helm repo add {ALIAS} failed with exit code 1. stderr: "
        'Error: looks like "https://charts.example/stable" is not a valid chart repository'
    )
    assert "upgrade" not in harness.fake.ops()


async def test_dry_run_failure_skips_the_real_upgrade(harness: Harness) -> None:
    harness.fake.set(
        "dry-run", exit=1, stderr='Error: template: web/templates/x.yaml:3: function "nope" not defined\n'
    )

    await harness.deploy()
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.status_message is not None
    assert status.status_message.startswith(
        f"helm upgrade --install --dry-run=server {RELEASE} failed with exit code 1"
    )
    assert "upgrade" not in harness.fake.ops()
    assert harness.watchers == []


async def test_a_release_stuck_in_pending_upgrade_is_rolled_back_and_reported(harness: Harness) -> None:
    harness.fake.history((1, "superseded"), (2, "deployed"), (3, "pending-upgrade"), call=1)
    harness.fake.history((1, "superseded"), (2, "deployed"), (3, "pending-upgrade"), call=2)
    harness.fake.history((5, "deployed"), call=3)

    await harness.deploy()
    await harness.settle()

    (rollback,) = harness.fake.calls("rollback")
    assert rollback.argv[:3] == ["rollback", RELEASE, "2"]
    assert harness.fake.ops().index("rollback") < harness.fake.ops().index("dry-run")
    (progress,) = harness.hub.progress()
    assert progress.message == (
        f"Recovered release {RELEASE} stuck in pending-upgrade (revision 3) with no helm process running: "
        "rolled back to revision 2"
    )
    assert [type(dto).__name__ for _, dto in harness.hub.reports] == [
        "WorkloadDeploymentProgressDto",
        "WorkloadDeploymentStatusDto",
    ]
    assert harness.hub.statuses()[0].status_message == "Deployed revision 5 of web 0.1.0"


async def test_a_never_deployed_pending_install_is_uninstalled_first(harness: Harness) -> None:
    harness.fake.history((1, "pending-install"), call=1)
    harness.fake.history((1, "pending-install"), call=2)
    harness.fake.history((1, "deployed"), call=3)

    await harness.deploy()
    await harness.settle()

    assert harness.fake.ops() == [
        "repo-add", "repo-update", "history", "history", "uninstall", "dry-run", "upgrade", "history",
    ]  # fmt: skip
    assert "uninstalled it (it was never deployed)" in harness.hub.progress()[0].message


async def test_reconciliation_without_version_keeps_the_installed_chart_version(harness: Harness) -> None:
    harness.fake.set("list", stdout=f'[{{"name": "{RELEASE}", "chart": "web-0.3.1", "status": "deployed"}}]')

    await harness.deploy(is_reconciliation=True)
    await harness.settle()

    (listing,) = harness.fake.calls("list")
    assert listing.argv[listing.argv.index("--filter") + 1] == f"^{RELEASE}$"
    for op in ("dry-run", "upgrade"):
        (call,) = harness.fake.calls(op)
        assert call.argv[call.argv.index("--version") + 1] == "0.3.1"


async def test_oci_repository_logs_in_with_stdin_password_and_skips_repo_add(harness: Harness) -> None:
    await harness.deploy(
        repository_url="oci://registry.example/charts",
        repository_username="bot",
        repository_password="oci-pa55word",
    )
    await harness.settle()

    assert harness.fake.ops()[0] == "registry-login"
    assert "repo-add" not in harness.fake.ops()
    assert harness.fake.stdin("registry-login") == "oci-pa55word"
    (upgrade,) = harness.fake.calls("upgrade")
    assert upgrade.argv[3] == "oci://registry.example/charts/web"


async def test_concurrent_deploys_from_one_repository_share_a_fresh_index(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.fake.history((1, "deployed"))
    h.fake.set("repo-update", sleep=0.5, call=1)

    for index in range(3):
        await h.deploy(workload_rt_id=f"65f0c0ffee000000000000{index:02d}")
    await h.settle()

    # The first refresh was already running when the others asked: one more refresh serves them both.
    assert len(h.fake.calls("repo-update")) == 2
    assert len(h.hub.statuses()) == 3


async def test_an_identical_redispatch_does_not_restart_the_running_deploy(harness: Harness) -> None:
    harness.fake.set("upgrade", sleep=1.0)
    await harness.deploy()
    await until(lambda: harness.fake.calls("upgrade"))

    await harness.deploy(is_reconciliation=True)  # the controller re-dispatching a Pending workload
    await harness.settle()

    assert harness.fake.terminated() == []
    assert len(harness.fake.calls("upgrade")) == 1
    (status,) = harness.hub.statuses()
    assert status.success is True


async def test_credentials_in_an_index_url_reach_helm_through_stdin_only(harness: Harness) -> None:
    await harness.deploy(repository_url="https://bot:url-pa55word@charts.example/stable")
    await harness.settle()

    (add,) = harness.fake.calls("repo-add")
    assert "url-pa55word" not in " ".join(add.argv)
    assert "https://charts.example/stable" in add.argv
    assert add.argv[add.argv.index("--username") + 1] == "bot"
    assert harness.fake.stdin("repo-add") == "url-pa55word"
    for text in harness.hub.texts():
        assert "url-pa55word" not in text


@pytest.mark.parametrize(
    "repository_url",
    [
        "https://bot:pa55/word-xyz@charts.example/stable",  # '/' ends the authority: "port" pa55
        "https://bot:pa55#word-xyz@charts.example/stable",  # '#' starts a fragment
        "https://bot:pa55?word-xyz@charts.example/stable",  # '?' starts a query
        "https://bot:pa55word-xyz@charts.example:99999/stable",  # port out of range
        "https://bot:pa55word-xyz@charts.example:http/stable",  # port not a number
        "ftp://bot:pa55word-xyz@charts.example/stable",  # unsupported scheme
        "bot:pa55word-xyz@charts.example/stable",  # no scheme at all
        "https://bot:pa55word-xyz@charts.example/a b",  # whitespace
        " https://bot:pa55word-xyz@charts.example/stable",  # surrounding whitespace
    ],
)
async def test_an_invalid_repository_url_is_refused_without_its_password(
    harness: Harness, repository_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await harness.deploy(repository_url=repository_url)
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.success is False
    assert status.status_message is not None
    assert status.status_message.startswith("Invalid workload: ")
    assert "bot:***@" in status.status_message or "repositoryUrl is blank" in status.status_message
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in (*harness.hub.texts(), logged):
        assert "pa55" not in text
        assert "word-xyz" not in text
    assert harness.fake.calls() == []


def test_values_dirs_of_killed_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    from communication_operator.workloads.valuesdirs import owner_tag, remove_orphaned_values_dirs

    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f"octo-values-{dead.pid}-acme-w1-abc"
    live = tmp_path / f"octo-values-{owner_tag()}-acme-w2-def"  # named as this process names its own
    unrelated = tmp_path / "octo-values-notapid"
    for directory in (orphan, live, unrelated):
        directory.mkdir()
        (directory / "values-base.yaml").write_text("a: 1\n")
    assert remove_orphaned_values_dirs(tmp_path) == 1
    assert not orphan.exists()
    assert live.exists()
    assert unrelated.exists()


async def test_a_push_refused_for_its_ids_reports_without_the_pushs_secrets(harness: Harness) -> None:
    # The naming refusal is logged and reported before any deploy runs: the push's secrets must be
    # known by then.
    # A tenant id with no letter or digit names no release; the refusal quotes it.
    password = "~!@#$%^&*()_+{}"
    await harness.deploy(tenant_id=password, repository_password=password)
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.success is False
    assert status.status_message is not None
    assert status.status_message.startswith("Invalid workload: ")
    assert password not in status.status_message
    assert KNOWN_SECRETS.redact(f"log line {password}") == "log line ***"
    assert harness.fake.calls() == []
