"""``./scripts/demo`` end to end: it must exit 0, print a summary where every step passed, and leave
nothing running (its operator, simulator and control plane are gone afterwards).

Plus fast checks of the summary table and the story runner that do not need a cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from octo_devtools.demo import (
    REAL_NODE_STEPS,
    STEPS,
    StepFailed,
    StepResult,
    StepSpec,
    Story,
    all_passed,
    render_summary,
    steps,
)
from octo_devtools.demo.story import StoryTarget, run_story

ROOT = Path(__file__).resolve().parents[2]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_script_passes_every_step_and_stops_what_it_started(tmp_path: Path) -> None:
    work_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPERATOR__")}
    result = subprocess.run(
        # the fake node (the real one, the default, is played below)
        [str(ROOT / "scripts" / "demo"), "--node", "fake", "--work-dir", str(work_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{len(STEPS)}/{len(STEPS)} steps passed" in output, output
    assert "ALL STEPS PASSED" in output
    for number, spec in enumerate(STEPS, 1):
        row = re.search(rf"^{number} \| {re.escape(spec.title)} .*\| (PASS|FAIL|NOT RUN) ", output, re.M)
        assert row is not None, f"no summary row for step {number} ({spec.title}):\n{output}"
        assert row.group(1) == "PASS", f"step {number} ({spec.title}):\n{output}"
    # The live ImagePullBackOff progress and the final Error were shown while the story ran.
    assert re.search(
        r"live progress at the controller: Pod \S+ container 'web' waiting: ImagePullBackOff — ", output
    ), output
    assert "final status at the controller: Error: " in output
    # Every step line carries the elapsed time.
    assert re.search(r"^\[\s*\d+\.\d+s\] step 6/6 PASS in ", output, re.M), output

    pids = [int(p) for p in re.findall(r"(?:operator|controller simulator) pid (\d+)", output)]
    pids += [int(p) for p in re.findall(r"pid (\d+) started with the same state file", output)]
    pids += [int(p) for p in re.findall(r"devcluster: stopped pids ([\d ]+)", output)[0].split()]
    assert len(pids) >= 6, output  # operator, 2 simulators, etcd, kube-apiserver, kube-controller-manager
    assert [pid for pid in pids if _pid_alive(pid)] == [], output
    assert (work_dir / "operator.log").is_file()  # --work-dir is kept (logs)


@pytest.mark.cluster
@pytest.mark.realnode
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_on_the_real_node_by_default_with_real_pods_pull_failure_and_crash_loop(
    tmp_path: Path,
) -> None:
    work_dir = tmp_path / "demo-real"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPERATOR__")}
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--work-dir", str(work_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    total = len(REAL_NODE_STEPS)
    assert f"{total}/{total} steps passed" in output, output
    assert re.search(r"^node: real \(kubelet 1\.20\.2, containerd", output, re.M), output
    # `kubectl get pods -o wide`: a Running pod with a pod IP on the node.
    assert re.search(r"testapp-\S+\s+1/1\s+Running\s+\d+\s+\S+\s+10\.244\.\d+\.\d+\s+localhost", output), (
        output
    )
    # What the real kubelet wrote reached the controller live.
    assert re.search(
        r"live progress at the controller: Pod \S+ container 'app' waiting: ErrImagePull — ", output
    )
    assert re.search(
        r"live progress at the controller: Pod \S+ container 'app' waiting: CrashLoopBackOff — back-off",
        output,
    ), output
    pids = [int(p) for p in re.findall(r"(?:operator|controller simulator) pid (\d+)", output)]
    pids += [int(p) for p in re.findall(r"devcluster: stopped pids ([\d ]+)", output)[0].split()]
    assert len(pids) >= 9, output  # operator, simulator, control plane, containerd, kubelet, scheduler, ...
    assert [pid for pid in pids if _pid_alive(pid)] == [], output


# -- without a cluster: the table and the runner's bookkeeping ------------------------------------------


def _results(*verdicts: bool | None) -> list[StepResult]:
    return [
        StepResult(n, f"step {n}", "expected thing", "observed thing", passed=v, seconds=1.5)
        for n, v in enumerate(verdicts, 1)
    ]


def test_summary_says_all_passed_only_when_every_step_passed() -> None:
    passing = _results(True, True)
    assert all_passed(passing)
    assert render_summary(passing).splitlines()[-1] == "2/2 steps passed in 3.0 s: ALL STEPS PASSED"

    mixed = _results(True, False, None)
    assert not all_passed(mixed)
    table = render_summary(mixed)
    assert table.splitlines()[-1] == "1/3 steps passed in 4.5 s: 2 STEP(S) DID NOT PASS"
    assert [line.split(" | ")[4].strip() for line in table.splitlines()[2:5]] == ["PASS", "FAIL", "NOT RUN"]
    assert not all_passed([])


def test_summary_wraps_long_observations_under_their_step() -> None:
    result = StepResult(1, "deploy", "short", "word " * 40, passed=True, seconds=2.0)
    lines = render_summary([result], observed_width=30).splitlines()
    body = lines[2:-2]
    assert len(body) > 1
    assert body[0].startswith("1 | deploy")
    assert all(line.startswith("  |") for line in body[1:])


async def test_a_failing_first_step_leaves_the_rest_not_run() -> None:
    async def refuse(story: Story) -> str:
        raise StepFailed("the controller refused the pool")

    async def never(story: Story) -> str:
        raise AssertionError("must not run without the pool")

    steps = [StepSpec("a", "pool", "Online", refuse), StepSpec("b", "workload", "Deployed", never)]
    lines: list[str] = []
    target = StoryTarget(admin=None, kube=None, namespace="ns", repository_url="http://repo")  # type: ignore[arg-type]
    results = await run_story(target, lines.append, steps=steps)
    assert [(r.passed, r.observed) for r in results] == [
        (False, "the controller refused the pool"),
        (None, "needs the pool from step 1"),
    ]
    assert any("step 1/2 FAIL in " in line for line in lines)
    assert any("step 2/2 workload: NOT RUN" in line for line in lines)


def test_steps_are_picked_by_key_in_story_order() -> None:
    assert [s.key for s in steps("undeploy-pool", "pool")] == ["pool", "undeploy-pool"]
    with pytest.raises(KeyError, match="unknown story step"):
        steps("pool", "nope")


def test_demo_module_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "octo_devtools.demo", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "--work-dir" in result.stdout


def test_summary_is_headed_by_the_node_that_ran_the_pods() -> None:
    table = render_summary(_results(True), node="real (kubelet 1.20.2)")
    assert table.splitlines()[0] == "node: real (kubelet 1.20.2)"
    assert table.splitlines()[-1] == "1/1 steps passed in 1.5 s: ALL STEPS PASSED"
    assert not render_summary(_results(True)).startswith("node:")


def test_real_node_story_adds_the_crash_loop_after_the_bad_image() -> None:
    assert [s.key for s in REAL_NODE_STEPS] == [
        "pool",
        "good-workload",
        "bad-image",
        "crash-loop",
        "restart",
        "undeploy-workloads",
        "undeploy-pool",
    ]
    assert [s.key for s in STEPS] == [s.key for s in REAL_NODE_STEPS if s.key != "crash-loop"]
