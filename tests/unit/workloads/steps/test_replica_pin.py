"""Step replica pin: ``replicaCount`` pinned to the live count on helm 4 only, never when hibernated."""

from __future__ import annotations

import pytest

from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.steps.replica_pin import replica_pin_values

from ..doubles import RELEASE, ScriptedHelm, dto


class Live:
    def __init__(self, count: int | None) -> None:
        self.count = count

    async def live_replicas(self, namespace: str, release: str) -> int | None:
        return self.count


@pytest.mark.parametrize(
    ("major", "live", "hibernated", "expected"),
    [
        (4, 3, False, {"replicaCount": "3"}),
        (4, None, False, {}),
        (4, 3, True, {}),
        (3, 3, False, {}),
    ],
)
async def test_the_pin_follows_the_live_count_on_helm_4(
    major: int, live: int | None, hibernated: bool, expected: dict[str, str]
) -> None:
    helm = ScriptedHelm(major=major)
    pin = await replica_pin_values(helm, Live(live), dto(hibernated=hibernated), RELEASE, "octo")
    assert pin == expected


async def test_without_a_replica_reader_nothing_is_pinned_and_helm_is_not_asked() -> None:
    helm = ScriptedHelm()
    assert await replica_pin_values(helm, None, dto(), RELEASE, "octo") == {}
    assert helm.calls == []


async def test_an_unreadable_helm_version_fails_the_deploy() -> None:
    helm = ScriptedHelm()
    helm.failures["version"] = HelmError("version", None, "helm binary 'helm' not found")
    with pytest.raises(DeployFailed, match="not found"):
        await replica_pin_values(helm, Live(2), dto(), RELEASE, "octo")
