"""``python -m octo_devtools.demo`` (what ``scripts/demo`` runs): start everything locally, play the
story, print the summary table, stop everything. Exit 0 only if every step passed.

Exit codes: 0 all steps passed, 1 a step failed, 2 the environment did not start, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from octo_devtools.demo.local import (
    CRASH_VALUES,
    NODE_DESCRIPTIONS,
    POOL_NAMESPACE,
    TENANT,
    DemoSetupError,
    local_environment,
    log_tail,
)
from octo_devtools.demo.story import (
    REAL_NODE_STEPS,
    STEPS,
    StepResult,
    StoryTarget,
    StoryTimeouts,
    all_passed,
    render_summary,
    run_story,
)
from octo_devtools.devcluster.images import TEST_IMAGE
from octo_devtools.devcluster.lifecycle import NodeKind

log = logging.getLogger(__name__)

EXIT_PASSED = 0
EXIT_STEP_FAILED = 1
EXIT_SETUP_FAILED = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="demo",
        description="Local cluster + controller simulator + the operator in central mode, and a scripted "
        "story: pool, good workload, bad image, controller restart, undeploy.",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where the cluster state and the logs go (default: a new temporary directory, removed "
        "after a passing run, kept after a failing one)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory after a passing run")
    parser.add_argument(
        "--node",
        choices=("real", "fake"),
        default="real",
        help="real (default): containerd, kubelet and kube-scheduler run real pods (needs root); "
        "fake: the fake kubelet writes pod statuses (faster, no root)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also print the tools' own log lines")
    return parser


#: The real node's pods take real time: pulls fail after DNS, crash loops back off, pods that never
#: started are removed only by the kubelet's once-a-minute container garbage collection.
REAL_NODE_TIMEOUTS = StoryTimeouts(pool=60, deploy=120, failure=150, restart=60, undeploy=120)


def image_reference_parts(image: str) -> tuple[str, str]:
    """``repo/name:tag`` → (``repo/name``, ``tag``)."""
    name, _, tag = image.rpartition(":")
    return name, tag


class Demo:
    def __init__(self, work_dir: Path, out: TextIO, node: NodeKind = "real") -> None:
        self.work_dir = work_dir
        self.node = node
        self.out = out
        self.started = time.monotonic()
        self.results: list[StepResult] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def progress(self, line: str) -> None:
        self.say(f"[{self.elapsed():6.1f}s] {line}")

    async def run(self) -> int:
        self.progress(f"demo: work directory {self.work_dir}")
        try:
            async with local_environment(self.work_dir, self.progress, node=self.node) as env:
                target = StoryTarget(
                    admin=env.simulator.admin,
                    kube=env.api,
                    namespace=env.namespace,
                    repository_url=env.chart_repo_url,
                    tenant_id=TENANT,
                    restart_controller=env.restart_controller,
                )
                story_steps = STEPS
                if self.node == "real":
                    target = dataclasses.replace(
                        target,
                        chart_name=env.chart_name,
                        good_image=image_reference_parts(TEST_IMAGE),
                        # a real kubelet says ErrImagePull first, ImagePullBackOff on the retries
                        progress_markers=("ErrImagePull", "ImagePullBackOff"),
                        crash_values=CRASH_VALUES,
                        show_pods=env.show_pods,
                        timeouts=REAL_NODE_TIMEOUTS,
                    )
                    story_steps = REAL_NODE_STEPS
                self.progress(
                    f"the story: {len(story_steps)} steps, tenant {TENANT}, namespace {POOL_NAMESPACE}"
                )
                await run_story(target, self.say, steps=story_steps, clock=self.elapsed, results=self.results)
                if not all_passed(self.results):
                    self.say(f"--- operator log (last lines of {env.operator_log}) ---")
                    self.say(log_tail(env.operator_log, 40))
        except DemoSetupError as exc:
            self.progress(f"demo: the environment did not start: {exc}")
            return EXIT_SETUP_FAILED
        except Exception as exc:  # cluster, chart repo or simulator errors: say which, no traceback
            log.info("demo environment failed", exc_info=True)
            self.progress(
                f"demo: the environment failed: {type(exc).__name__}: {exc} (-v shows the traceback)"
            )
            return EXIT_SETUP_FAILED
        self.say("")
        self.say(render_summary(self.results, node=NODE_DESCRIPTIONS[self.node]))
        return EXIT_PASSED if all_passed(self.results) else EXIT_STEP_FAILED


async def _main_task(demo: Demo) -> int:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM stops the demo like Ctrl-C does: the task is cancelled and every cleanup runs.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await demo.run()


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    temporary = args.work_dir is None
    work_dir = (args.work_dir or Path(tempfile.mkdtemp(prefix="communication-operator-demo-"))).resolve()
    demo = Demo(work_dir, out, args.node)
    try:
        code = asyncio.run(_main_task(demo))
    except (KeyboardInterrupt, asyncio.CancelledError):
        demo.progress("demo: interrupted; everything it started has been stopped")
        if demo.results:
            demo.say(render_summary(demo.results, node=NODE_DESCRIPTIONS[demo.node]))
        code = EXIT_INTERRUPTED
    if code == EXIT_PASSED and temporary and not args.keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        demo.say(f"logs kept in {work_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
