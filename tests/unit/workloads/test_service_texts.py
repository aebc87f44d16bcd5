"""The texts a deploy sends the controller and writes to the log: helm failure lines (octo-spec §4.1,
§4.3, issue 12), the failed status with ``Pod diagnostics:`` (octo-spec §4.11) and the fail-fast line,
all redacted before anything is cut (issue 13 items 1 and 2). Same harness as test_service.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from communication_operator.contracts import ValueOverrideDto, WorkloadUndeployedDto
from communication_operator.redaction import truncate_middle
from communication_operator.workloads.signals.model import Signal, SignalKind

from .doubles import ALIAS, POOL, RELEASE, TENANT, WORKLOAD, Harness, until

SECRET = "Zq9#Vx!w 7kP$r2"  # contains a space; every 6-character window of it is distinctive


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    h.fake.history((3, "deployed"))
    return h


def _fragments(secret: str, size: int = 6) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def _assert_no_fragment(texts: list[str], secret: str = SECRET) -> None:
    for text in texts:
        for fragment in _fragments(secret):
            assert fragment not in text, f"{fragment!r} of the secret in {text!r}"


def _secret_values(secret: str = SECRET) -> list[ValueOverrideDto]:
    return [ValueOverrideDto(path="config.password", value=secret, is_secret=True)]


async def test_upgrade_failure_names_the_release_after_the_operation(harness: Harness) -> None:
    harness.fake.set("upgrade", exit=1, stderr="Error: UPGRADE FAILED: context deadline exceeded\n")

    await harness.deploy()
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.status_message == (
        f"helm upgrade --install {RELEASE} failed with exit code 1. stderr: "
        "Error: UPGRADE FAILED: context deadline exceeded"
    )


async def test_dry_run_failure_names_the_release_after_the_operation(harness: Harness) -> None:
    harness.fake.set("dry-run", exit=1, stderr='Error: template: web/x.yaml:3: function "nope" undefined\n')

    await harness.deploy()
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.status_message == (
        f"helm upgrade --install --dry-run=server {RELEASE} failed with exit code 1. stderr: "
        'Error: template: web/x.yaml:3: function "nope" undefined'
    )


@pytest.mark.parametrize("operation", ["add", "update"])
async def test_repository_failures_name_the_alias_not_the_url(harness: Harness, operation: str) -> None:
    harness.fake.set(f"repo-{operation}", exit=1, stderr="Error: could not find index.yaml\n")

    await harness.deploy()
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.status_message == (
        f"helm repo {operation} {ALIAS} failed with exit code 1. stderr: Error: could not find index.yaml"
    )


async def test_uninstall_failure_names_the_release_in_the_log(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.fake.set("uninstall", exit=1, stderr="Error: uninstall: timed out\n")
    await harness.service.on_workload_undeployed(
        WorkloadUndeployedDto(tenant_id=TENANT, pool_rt_id=POOL, workload_rt_id=WORKLOAD, workload_name="x")
    )
    await harness.settle()

    assert f"helm uninstall {RELEASE} failed with exit code 1. stderr: Error: uninstall: timed out" in (
        caplog.text
    )


async def test_a_failed_install_without_findings_reports_the_helm_line_alone(harness: Harness) -> None:
    harness.fake.set("upgrade", exit=1, stderr="Error: UPGRADE FAILED: boom\n")

    await harness.deploy()
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.status_message is not None
    assert "Pod diagnostics" not in status.status_message


async def test_a_failed_install_keeps_whole_diagnostic_lines_within_the_bound(harness: Harness) -> None:
    harness.fake.set("upgrade", sleep=0.3, exit=1, stderr="Error: UPGRADE FAILED: " + "e" * 6000 + "\n")
    await harness.deploy()
    await until(lambda: harness.watchers and harness.watchers[0].started.is_set())
    lines = [f"Pod web-{i} container 'web' waiting: CrashLoopBackOff — back-off {i}" for i in range(200)]
    harness.watchers[0].text = "\n".join(lines)
    await harness.settle()

    (status,) = harness.hub.statuses()
    message = status.status_message or ""
    assert len(message) <= 4000
    head, body = message.split("\n\nPod diagnostics:\n")
    assert head.startswith(f"helm upgrade --install {RELEASE} failed with exit code 1. stderr: Error:")
    shown = body.split("\n")
    assert shown[-1].startswith("... and ")
    assert shown[-1].endswith(" more")
    assert shown[:-1] == lines[: len(shown) - 1]
    assert int(shown[-1].split()[2]) == len(lines) - (len(shown) - 1)
    assert len(body) >= 1900, "the diagnostics get at least half of the room"


def _straddling_message(prefix: str, limit: int) -> str:
    """A message that puts SECRET across the cut ``truncate_middle`` makes at ``limit``."""
    tail = "b" * 3000
    probe_length = len(prefix) + 100 + len(SECRET) + len(tail)
    probe = "".join(chr(0x4E00 + i) for i in range(probe_length))
    head_length = truncate_middle(probe, limit, separator=" ").index(" … ")
    before = head_length - len(prefix) - len(SECRET) // 2
    return "a" * before + SECRET + "b" * (3100 - before)


@pytest.mark.parametrize("limit", [400, 200], ids=["status-cut", "log-cut"])
async def test_a_fail_fast_cut_never_leaves_part_of_a_secret(
    harness: Harness, caplog: pytest.LogCaptureFixture, limit: int
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.fake.set("upgrade", sleep=30)
    await harness.deploy(values=_secret_values())
    await until(lambda: harness.fake.calls("upgrade"))
    watcher = harness.watchers[0]
    message = _straddling_message("ImagePullBackOff: pod web-1 container web: ", limit)
    watcher.fatal_list = (
        Signal(SignalKind.IMAGE_PULL_BACK_OFF, "Pod", "web-1", "ImagePullBackOff", message, container="web"),
    )
    watcher.fatal.set()
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.status_message is not None
    assert status.status_message.startswith(f"helm upgrade --install {RELEASE} stopped early (fail-fast)")
    _assert_no_fragment([*harness.hub.texts(), caplog.text])


async def test_reports_of_a_secret_with_other_whitespace_carry_none_of_it(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqh\tkiG9w0BAQEFAASC\n-----END KEY-----"
    harness.fake.set("upgrade", sleep=0.3, exit=1, stderr=f"Error: bad key:\n{secret}\n")
    await harness.deploy(values=_secret_values(secret))
    await until(lambda: harness.watchers and harness.watchers[0].started.is_set())
    await harness.watchers[0].emit(
        f"Pod web-1 container 'web' waiting: CreateContainerConfigError — {secret}."
    )
    await harness.settle()

    texts: list[Any] = [*harness.hub.texts(), caplog.text]
    _assert_no_fragment(texts, "MIIEvQIBADANBgkqh")
    _assert_no_fragment(texts, "kiG9w0BAQEFAASC")
