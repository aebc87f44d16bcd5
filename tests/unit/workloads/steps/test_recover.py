"""Step recover: a release stuck in pending-* is rolled back and the user told in a progress report."""

from __future__ import annotations

from communication_operator.workloads.ports import Delivery
from communication_operator.workloads.steps.recover import recover

from ..doubles import RELEASE, ScriptedHelm

STUCK = [
    {"revision": 1, "status": "superseded", "chart": "web-0.1.0"},
    {"revision": 2, "status": "deployed", "chart": "web-0.1.0"},
    {"revision": 3, "status": "pending-upgrade", "chart": "web-0.2.0"},
]


class Progress:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str) -> Delivery:
        self.texts.append(text)
        return None


async def test_a_stuck_release_is_rolled_back_and_reported_as_progress() -> None:
    helm = ScriptedHelm()
    helm.histories = [STUCK, STUCK]
    progress = Progress()

    recovery = await recover(
        helm, RELEASE, "octo", timeout_seconds=60, secrets=frozenset(), progress=progress, context={}
    )

    assert recovery is not None
    assert helm.operations() == ["history", "history", "rollback"]
    assert helm.calls[-1][1]["revision"] == 2
    assert progress.texts == [
        f"Recovered release {RELEASE} stuck in pending-upgrade (revision 3) with no helm process running: "
        "rolled back to revision 2"
    ]


async def test_a_release_that_is_not_stuck_is_left_alone_and_nothing_is_reported() -> None:
    helm = ScriptedHelm()
    helm.histories = [STUCK[:2]]
    progress = Progress()

    recovery = await recover(
        helm, RELEASE, "octo", timeout_seconds=60, secrets=frozenset(), progress=progress, context={}
    )

    assert recovery is None
    assert helm.operations() == ["history"]
    assert progress.texts == []
