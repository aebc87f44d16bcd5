"""Step resolve version (octo-spec §4.8): pinned, else the installed one on reconciliation, else newest."""

from __future__ import annotations

import logging

import pytest

from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.steps.resolve_version import resolve_version

from ..doubles import RELEASE, ScriptedHelm, dto


async def test_a_pinned_version_is_used_as_pushed_without_asking_helm() -> None:
    helm = ScriptedHelm()
    assert await resolve_version(helm, dto(is_reconciliation=True), RELEASE, "octo", "1.0.0") == "1.0.0"
    assert helm.calls == []


async def test_a_first_deploy_without_a_version_installs_the_newest() -> None:
    helm = ScriptedHelm()
    assert await resolve_version(helm, dto(), RELEASE, "octo", None) is None
    assert helm.calls == []


async def test_a_reconciliation_keeps_the_installed_chart_version() -> None:
    helm = ScriptedHelm()
    helm.releases = [
        {"name": f"{RELEASE}-other", "chart": "web-9.9.9"},
        {"name": RELEASE, "chart": "web-0.3.1"},
    ]

    version = await resolve_version(helm, dto(is_reconciliation=True), RELEASE, "octo", None)

    assert version == "0.3.1"
    assert helm.calls == [("list", {"namespace": "octo", "selector": None, "name_filter": f"^{RELEASE}$"})]


@pytest.mark.parametrize("failure", [HelmError("list", 1, "Error: boom"), ValueError("not JSON")])
async def test_an_unreadable_installed_version_falls_back_to_the_newest(
    failure: HelmError | ValueError, caplog: pytest.LogCaptureFixture
) -> None:
    helm = ScriptedHelm()
    helm.failures["list"] = failure
    caplog.set_level(logging.WARNING)

    assert await resolve_version(helm, dto(is_reconciliation=True), RELEASE, "octo", None) is None
    assert any("cannot read the installed chart version" in r.getMessage() for r in caplog.records)
