"""Step repository: credentials from the push before the URL's, and helm's failure as DeployFailed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.refresh import RepositoryRefresher
from communication_operator.workloads.repository import chart_source
from communication_operator.workloads.steps.repository import prepare_repository

from ..doubles import ScriptedHelm, dto

URL = "https://url-user:url-pw@charts.example/stable"


@contextlib.asynccontextmanager
async def no_slot() -> AsyncIterator[None]:
    yield


async def test_the_pushs_credentials_win_over_the_urls() -> None:
    helm = ScriptedHelm()
    push = dto(repository_url=URL, repository_username="push-user", repository_password="push-pw")

    await prepare_repository(RepositoryRefresher(helm, no_slot), chart_source(URL, "web"), push)

    (add, update) = helm.calls
    assert add[0] == "repo-add"
    assert (add[1]["username"], add[1]["password"]) == ("push-user", "push-pw")
    assert update[0] == "repo-update"


async def test_the_urls_credentials_are_used_when_the_push_has_none() -> None:
    helm = ScriptedHelm()

    await prepare_repository(
        RepositoryRefresher(helm, no_slot), chart_source(URL, "web"), dto(repository_url=URL)
    )

    assert (helm.calls[0][1]["username"], helm.calls[0][1]["password"]) == ("url-user", "url-pw")


async def test_a_failed_repo_add_fails_the_deploy_with_helms_words() -> None:
    helm = ScriptedHelm()
    helm.failures["repo-add"] = HelmError(
        "repo add octo-abc", 1, "Error: looks like it is not a valid chart repository"
    )

    with pytest.raises(DeployFailed) as failed:
        await prepare_repository(
            RepositoryRefresher(helm, no_slot), chart_source(URL, "web"), dto(repository_url=URL)
        )

    assert str(failed.value) == str(helm.failures["repo-add"])
    assert "url-pw" not in str(failed.value)
