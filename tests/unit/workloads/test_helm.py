"""HelmCli as a process runner, against a stand-in helm script (see fake_helm.py)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from communication_operator.workloads.helm import HelmCli, HelmError, HelmVersion, escape_set_value

from .fake_helm import FakeHelm


@pytest.fixture
def fake_helm(tmp_path: Path) -> FakeHelm:
    return FakeHelm(tmp_path / "helm")


def cli(fake: FakeHelm, kill_grace: float = 5.0) -> HelmCli:
    return HelmCli(binary=str(fake.binary), kill_grace=kill_grace)


async def test_repo_password_goes_through_stdin_never_argv(fake_helm: FakeHelm) -> None:
    await cli(fake_helm).repo_add("octo-abc", "https://charts.example/", "reader", "pa55-w0rd!")

    (call,) = fake_helm.calls("repo-add")
    assert call.argv == [
        "repo", "add", "octo-abc", "https://charts.example/", "--force-update",
        "--username", "reader", "--password-stdin",
    ]  # fmt: skip
    assert fake_helm.stdin("repo-add") == "pa55-w0rd!"


async def test_failure_message_is_upstream_shaped_and_redacted(fake_helm: FakeHelm) -> None:
    fake_helm.set("registry-login", exit=1, stderr="Error: login with pa55-w0rd! denied\n")

    with pytest.raises(HelmError) as raised:
        await cli(fake_helm).registry_login("registry.example", "reader", "pa55-w0rd!")

    assert (
        str(raised.value)
        == "helm registry login failed with exit code 1. stderr: Error: login with *** denied"
    )
    assert raised.value.exit_code == 1
    assert "pa55-w0rd!" not in repr(raised.value.__dict__)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v3.19.0", ["--atomic", "--wait"]),
        ("v4.3.1", ["--rollback-on-failure", "--wait=watcher"]),
    ],
)
async def test_upgrade_flags_follow_the_installed_helm_major_version(
    fake_helm: FakeHelm, version: str, expected: list[str], tmp_path: Path
) -> None:
    fake_helm.set("version", stdout=version)
    values = tmp_path / "values.yaml"
    values.write_text("a: 1\n")

    await cli(fake_helm).upgrade_install(
        "rel",
        "octo-abc/web",
        namespace="octo",
        values_files=[values],
        chart_version="0.1.0",
        timeout_seconds=42,
        history_max=3,
        labels={"b": "2", "a": "1"},
    )

    (call,) = fake_helm.calls("upgrade")
    assert call.argv == [
        "upgrade", "--install", "rel", "octo-abc/web", "--version", "0.1.0", "--namespace", "octo",
        *expected, "--timeout", "42s", "--history-max", "3", "--labels", "a=1,b=2", "-f", str(values),
    ]  # fmt: skip


async def test_dry_run_is_server_side_without_wait_or_rollback(fake_helm: FakeHelm) -> None:
    await cli(fake_helm).upgrade_install(
        "rel",
        "octo-abc/web",
        namespace="octo",
        values_files=[],
        chart_version=None,
        timeout_seconds=42,
        history_max=3,
        labels={"a": "1"},
        dry_run=True,
    )

    (call,) = fake_helm.calls("dry-run")
    assert call.argv == [
        "upgrade",
        "--install",
        "rel",
        "octo-abc/web",
        "--namespace",
        "octo",
        "--dry-run=server",
    ]


async def test_cancelling_a_run_sends_sigterm_to_helm_and_waits_for_it(fake_helm: FakeHelm) -> None:
    fake_helm.set("upgrade", sleep=30)
    helm = cli(fake_helm)
    task = asyncio.create_task(helm.run(["upgrade", "x"], operation="upgrade"))
    await _wait_for(lambda: fake_helm.calls("upgrade"))

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert time.monotonic() - started < 3
    assert fake_helm.terminated() == ["upgrade"]
    assert fake_helm.alive() == []


async def test_helm_ignoring_sigterm_is_killed_after_the_grace_period(fake_helm: FakeHelm) -> None:
    fake_helm.set("upgrade", sleep=30, ignore_term=True)
    task = asyncio.create_task(cli(fake_helm, kill_grace=0.5).run(["upgrade", "x"], operation="upgrade"))
    await _wait_for(lambda: fake_helm.calls("upgrade"))
    (call,) = fake_helm.calls("upgrade")

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert 0.4 < time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(call.pid, 0)


async def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HelmError, match=r"helm binary '.*nope' not found"):
        await HelmCli(binary=str(tmp_path / "nope")).run(["version"], operation="version")


def test_version_parsing_and_timeouts() -> None:
    assert HelmVersion.parse("v3.19.0+g3d8990f") == HelmVersion(3, 19, 0)
    with pytest.raises(HelmError, match="cannot read a helm version"):
        HelmVersion.parse("garbage")
    assert HelmError("upgrade", 1, "Error: context deadline exceeded").timed_out
    assert not HelmError("upgrade", 1, "Error: chart not found").timed_out
    assert escape_set_value(r"a,b=c\d") == r"a\,b\=c\\d"


async def _wait_for(probe: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the fake helm")
        await asyncio.sleep(0.02)


def test_helm_does_not_inherit_the_operators_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from communication_operator.workloads.helm import helm_environment

    monkeypatch.setenv("OPERATOR__BROKERPASSWORD", "broker-secret")
    monkeypatch.setenv("operator__clustersecrets__mongodbuserpassword", "mongo-secret")
    monkeypatch.setenv("PATH", "/usr/bin")
    env = helm_environment({"HELM_CACHE_HOME": "/tmp/helm"})
    assert "broker-secret" not in env.values()
    assert "mongo-secret" not in env.values()
    assert env["PATH"] == "/usr/bin"
    assert env["HELM_CACHE_HOME"] == "/tmp/helm"
