"""``helm repo add`` runs once per repository and credentials; later deploys only ``repo update``.

``repo add`` rewrites repositories.yaml in place, so a concurrent deploy's helm could read it half
written and fail with "repo … not found"; ``repo update`` replaces only the index file.
"""

from __future__ import annotations

from pathlib import Path

from communication_operator.workloads.repository import repository_alias

from .doubles import Harness


async def test_repo_add_once_then_only_updates_until_credentials_change(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.fake.history((1, "deployed"))

    await harness.deploy(chart_version="0.1.0")
    await harness.settle()
    await harness.deploy(chart_version="0.2.0")
    await harness.settle()
    ops = harness.fake.ops()
    assert ops.count("repo-add") == 1, ops
    assert ops.count("repo-update") == 2, ops

    await harness.deploy(chart_version="0.3.0", repository_username="reader", repository_password="pw-1234")
    await harness.settle()
    ops = harness.fake.ops()
    assert ops.count("repo-add") == 2, ops
    assert harness.fake.stdin("repo-add") == "pw-1234"
    assert all(status.success for status in harness.hub.statuses())


async def test_a_failed_refresh_adds_the_repository_again_next_time(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.fake.history((1, "deployed"))
    harness.fake.set("repo-update", exit=1, stderr="Error: connection refused\n", call=2)

    for version in ("0.1.0", "0.2.0", "0.3.0"):
        await harness.deploy(chart_version=version)
        await harness.settle()

    ops = harness.fake.ops()
    assert ops.count("repo-add") == 2, ops  # first deploy, and after the failed update of the second
    assert [s.success for s in harness.hub.statuses()] == [True, False, True]


async def test_deploys_waiting_for_a_slow_repository_hold_no_slot(tmp_path: Path) -> None:
    # Review finding 13: two deploys of one slow repository used to hold both slots (one refreshing,
    # one waiting for the repository's lock) while a deploy from another repository waited for a slot.
    harness = Harness(tmp_path, max_concurrent=2)
    harness.fake.history((1, "deployed"))
    harness.fake.set("repo-update", sleep=2)
    slow = "https://slow.example/charts"
    await harness.deploy(workload_rt_id="65f0c0ffee0000000000bb01", repository_url=slow)
    await harness.deploy(workload_rt_id="65f0c0ffee0000000000bb02", repository_url=slow)
    await harness.deploy(workload_rt_id="65f0c0ffee0000000000bb03", repository_url="https://fast.example/c")
    await harness.settle()

    assert all(status.success for status in harness.hub.statuses())
    lines = harness.fake.lines()
    slow_update = next(c for c in harness.fake.calls("repo-update") if repository_alias(slow) in c.argv)
    fast_add = next(call for call in harness.fake.calls("repo-add") if "https://fast.example/c" in call.argv)
    slow_end = next(i for i, line in enumerate(lines) if line.startswith(f"END {slow_update.pid} "))
    fast_start = next(i for i, line in enumerate(lines) if line.startswith(f"START {fast_add.pid} "))
    assert fast_start < slow_end, "the other repository's deploy waited for a slot"
    assert harness.fake.peak_concurrency() <= 2


async def test_repository_locks_do_not_outlive_their_deploys(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.fake.history((1, "deployed"))
    for index in range(3):
        await harness.deploy(chart_version="0.1.0", repository_url=f"https://charts{index}.example/c")
        await harness.settle()

    assert len(harness.service._repositories) == 0
