"""A failed stuck-release recovery is best effort (octo-spec §4.10): logged, and the deploy goes on.

helm then decides: on a release still locked its upgrade fails with helm's own error (upstream's
failed status), and where the lock has gone meanwhile the deploy succeeds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from .doubles import RELEASE, Harness

ROLLBACK_ERROR = "Error: release has no 2 version\n"
LOCKED = "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n"


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.parametrize(
    ("stuck", "failing_op"),
    [
        (((1, "deployed"), (2, "pending-upgrade")), "rollback"),
        (((1, "pending-install"),), "uninstall"),
        (((1, "deployed"), (2, "uninstalling")), "uninstall"),
    ],
    ids=["rollback", "uninstall-never-deployed", "uninstall-interrupted"],
)
async def test_a_failed_recovery_is_logged_and_the_deploy_goes_on(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    stuck: tuple[tuple[int, str], ...],
    failing_op: str,
) -> None:
    harness.fake.history(*stuck, call=1)
    harness.fake.history(*stuck, call=2)
    harness.fake.history((3, "deployed"), call=3)
    harness.fake.set(failing_op, exit=1, stderr=ROLLBACK_ERROR)
    caplog.set_level(logging.WARNING, logger="communication_operator.workloads")

    await harness.deploy()
    await harness.settle()

    ops = harness.fake.ops()
    assert ops.index(failing_op) < ops.index("dry-run") < ops.index("upgrade")
    (status,) = harness.hub.statuses()
    assert status.success is True, status.status_message
    assert harness.hub.progress() == []  # nothing was recovered, so nothing says so
    failures = [r for r in caplog.records if "recovery failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert RELEASE in failures[0].getMessage()
    assert "has no 2 version" in failures[0].getMessage()


async def test_a_release_still_locked_after_a_failed_recovery_reports_helms_error(harness: Harness) -> None:
    stuck = ((1, "deployed"), (2, "pending-upgrade"))
    harness.fake.history(*stuck)
    harness.fake.set("rollback", exit=1, stderr=ROLLBACK_ERROR)
    harness.fake.set("upgrade", exit=1, stderr=LOCKED)

    await harness.deploy()
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.success is False
    assert status.status_message is not None
    # octo-spec §4.1/§4.3: helm's failure text, not a text of our recovery.
    assert status.status_message.startswith(
        f"helm upgrade --install {RELEASE} failed with exit code 1. stderr: "
    ), status.status_message
    assert "another operation (install/upgrade/rollback) is in progress" in status.status_message
