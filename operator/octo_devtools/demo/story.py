"""The scripted story the demo plays, and the e2e suite reuses: pool, good workload, bad image,
controller restart, undeploy.

Nothing here starts anything. A :class:`StoryTarget` says where the story plays: a controller (the
simulator's admin API), a Kubernetes API and the namespace the operator deploys into, and the chart
repository as the *operator* reaches it. The local demo (:mod:`.local`) and the kind e2e suite
(``tests/e2e``) each build one.

Every step acts the way a user of the controller would (admin API calls) and then checks what the
operator did from the outside: the controller's state and received calls, the CommunicationPool, the
helm release records (``sh.helm.release.v1.*`` Secrets) and the pods. A step passes only when
everything it promises was observed; its :class:`StepResult` says what was expected and what was seen.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.pools import GROUP, PLURAL, VERSION, PoolKey
from communication_operator.pools.naming import broker_secret_name, pool_resource_name
from communication_operator.workloads.naming import release_name
from octo_devtools.controller_sim.admin_client import AdminClient

log = logging.getLogger(__name__)

T = TypeVar("T")
Log = Callable[[str], None]

#: The image every story uses for its failing workload; nothing can pull it (``.invalid`` is reserved).
BOGUS_IMAGE = ("example.invalid/nope", "0")
#: The fake kubelet rule that matches it (a real kubelet needs no rule: the registry does not exist).
BOGUS_IMAGE_GLOB = "example.invalid/*"
#: The image of the good workload (the fake kubelet runs anything; a real kubelet pulls it).
GOOD_IMAGE = ("nginx", "1.25")


class StepFailed(Exception):
    """A step did not do what it said; the message is what was observed instead."""


@dataclass(frozen=True)
class StoryTimeouts:
    """Seconds each kind of wait may take before its step fails."""

    pool: float = 30.0
    deploy: float = 90.0
    failure: float = 120.0  # live progress, then the failed status (fail-fast or the helm timeout)
    restart: float = 45.0
    undeploy: float = 60.0


@dataclass
class StoryTarget:
    """Where the story plays. ``restart_controller`` kills and restarts the controller (keeping its
    state); without it the restart step fails, saying that it cannot be played here."""

    admin: AdminClient
    kube: client.ApiClient
    namespace: str
    repository_url: str
    chart_name: str = "web"
    tenant_id: str = "demo"
    good_image: tuple[str, str] = GOOD_IMAGE
    bad_image: tuple[str, str] = BOGUS_IMAGE
    #: Substrings of which at least one must appear in a live progress report of the bad workload.
    progress_markers: tuple[str, ...] = ("ImagePullBackOff",)
    restart_controller: Callable[[], Awaitable[str]] | None = None
    timeouts: StoryTimeouts = field(default_factory=StoryTimeouts)
    #: Extra values of the crash-loop workload (the good image told to exit 1); the step needs them.
    crash_values: str | None = None
    #: `kubectl get pods -o wide` of the namespace, printed after a workload's pods appear (real node).
    show_pods: Callable[[], Awaitable[str]] | None = None


@dataclass
class StepResult:
    number: int
    title: str
    expected: str
    observed: str = ""
    passed: bool | None = None  # None: not run
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NOT RUN"}[self.passed]


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; raise :class:`StepFailed` naming ``what`` and
    ``detail()`` (what was last seen instead)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            seen = detail() if detail is not None else repr(value)
            raise StepFailed(f"no {what} after {timeout:g} s (last seen: {_short(seen, 200)})")
        await asyncio.sleep(interval)


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _workload_summary(workload: dict[str, Any]) -> str:
    if not workload:
        return "nothing"
    message = _first_line(workload.get("statusMessage"))
    return (
        f"{workload['deploymentState']}"
        + (f": {message}" if message else "")
        + (f", {len(workload['progress'])} progress report(s)")
    )


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


class KubeView:
    """The read-only cluster checks the story makes, in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom: Any = client.CustomObjectsApi(api)
        self.core: Any = client.CoreV1Api(api)
        self.apps: Any = client.AppsV1Api(api)
        self.namespace = namespace

    async def pool(self, name: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return body

    async def secret_exists(self, name: str) -> bool:
        try:
            await self.core.read_namespaced_secret(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def release_statuses(self, release: str) -> list[str]:
        """The ``status`` label of every stored revision of ``release`` (helm's release records)."""
        listing = await self.core.list_namespaced_secret(
            self.namespace, label_selector=f"owner=helm,name={release}"
        )
        return [(item.metadata.labels or {}).get("status", "?") for item in listing.items]

    async def pods(self, release: str) -> list[Any]:
        listing = await self.core.list_namespaced_pod(
            self.namespace, label_selector=f"app.kubernetes.io/instance={release}"
        )
        return list(listing.items)

    async def ready_pods(self, release: str) -> int:
        ready = 0
        for pod in await self.pods(release):
            conditions = {c.type: c.status for c in (pod.status.conditions or [])}
            if conditions.get("Ready") == "True":
                ready += 1
        return ready


class Story:
    """The steps, in order. State (ids) carries from one step to the next."""

    def __init__(self, target: StoryTarget, log_line: Log = print) -> None:
        self.target = target
        self.admin = target.admin
        self.kube = KubeView(target.kube, target.namespace)
        self.log = log_line
        self.pool_rt_id: str | None = None
        self.good_rt_id: str | None = None
        self.bad_rt_id: str | None = None
        self.crash_rt_id: str | None = None
        self.good_deployed = False

    # -- names --------------------------------------------------------------------------------------

    @property
    def pool_cr(self) -> str:
        assert self.pool_rt_id is not None
        return pool_resource_name(PoolKey(self.target.tenant_id, self.pool_rt_id))

    def release(self, workload_rt_id: str) -> str:
        return release_name(self.target.tenant_id, workload_rt_id)

    # -- controller probes --------------------------------------------------------------------------

    async def _pool_state(self) -> dict[str, Any]:
        assert self.pool_rt_id is not None
        return await self.admin.pool(self.pool_rt_id)

    async def _workload(self, rt_id: str) -> dict[str, Any]:
        return await self.admin.workload(rt_id)

    async def _pool_registered(self) -> str | None:
        """'Online' at the controller and 'Registered' on the CR, or None."""
        state = await self._pool_state()
        body = await self.kube.pool(self.pool_cr)
        status = (body or {}).get("status") or {}
        if state["communicationState"] == "Online" and status.get("communicationStatus") == "Registered":
            return f"controller: {state['communicationState']}, CR status: {status['communicationStatus']}"
        return None

    # -- steps ----------------------------------------------------------------------------------------

    async def deploy_pool(self) -> str:
        t = self.target
        self.pool_rt_id = await self.admin.create_pool(t.tenant_id, "demo-cloud", "Cloud")
        await self.admin.deploy_pool(self.pool_rt_id)
        self.log(f"pool {self.pool_rt_id} deployed at the controller; waiting for CR {self.pool_cr}")
        await eventually(
            lambda: self.kube.pool(self.pool_cr),
            timeout=t.timeouts.pool,
            what=f"CommunicationPool {t.namespace}/{self.pool_cr}",
        )
        self.log(f"CommunicationPool {t.namespace}/{self.pool_cr} created by the operator")
        secret = broker_secret_name(self.pool_cr)
        if not await self.kube.secret_exists(secret):
            await eventually(
                lambda: self.kube.secret_exists(secret), timeout=t.timeouts.pool, what=f"Secret {secret}"
            )
        online = await eventually(self._pool_registered, timeout=t.timeouts.pool, what="pool Online")
        return f"CR {self.pool_cr} + broker secret; {online}"

    async def _show_pods(self) -> None:
        if self.target.show_pods is not None:
            for line in (await self.target.show_pods()).rstrip().splitlines():
                self.log(f"  {line}")

    async def _create_workload(self, name: str, image: tuple[str, str], extra_values: str = "") -> str:
        t = self.target
        assert self.pool_rt_id is not None
        values_yaml = f'image:\n  repository: "{image[0]}"\n  tag: "{image[1]}"\n' + extra_values
        return await self.admin.create_workload(
            t.tenant_id,
            self.pool_rt_id,
            name,
            repository_url=t.repository_url,
            chart_name=t.chart_name,
            values_yaml=values_yaml,
        )

    async def deploy_good_workload(self) -> str:
        t = self.target
        self.good_rt_id = await self._create_workload("demo-web", t.good_image)
        release = self.release(self.good_rt_id)
        await self.admin.deploy_workload(self.good_rt_id)
        self.log(f"workload {self.good_rt_id} ({':'.join(t.good_image)}) deployed; release {release}")
        rt_id = self.good_rt_id
        last: dict[str, Any] = {}

        async def settled() -> dict[str, Any] | None:
            last.update(await self._workload(rt_id))
            return dict(last) if last["deploymentState"] in ("Deployed", "Error") else None

        workload = await eventually(
            settled,
            timeout=t.timeouts.deploy,
            what="final deployment status",
            detail=lambda: _workload_summary(last),
        )
        if workload["deploymentState"] != "Deployed":
            raise StepFailed(
                f"status {workload['deploymentState']}: {_short(workload['statusMessage'] or '')}"
            )
        statuses = await self.kube.release_statuses(release)
        ready = await self.kube.ready_pods(release)
        if "deployed" not in statuses or ready < 1:
            raise StepFailed(
                f"controller says Deployed but release revisions {statuses}, {ready} ready pod(s)"
            )
        self.good_deployed = True
        await self._show_pods()
        message = _short(_first_line(workload["statusMessage"]), 60)
        return f"Deployed ({message}); release deployed, {ready} pod Ready"

    async def deploy_bad_workload(self) -> str:
        t = self.target
        self.bad_rt_id = await self._create_workload("demo-broken", t.bad_image)
        await self.admin.deploy_workload(self.bad_rt_id)
        self.log(f"workload {self.bad_rt_id} ({':'.join(t.bad_image)}) deployed; watching its progress")
        return await self._expect_failure(self.bad_rt_id, t.progress_markers)

    async def deploy_crash_workload(self) -> str:
        t = self.target
        if t.crash_values is None:
            raise StepFailed("this target has no crashing workload to deploy")
        self.crash_rt_id = await self._create_workload("demo-crash", t.good_image, t.crash_values)
        await self.admin.deploy_workload(self.crash_rt_id)
        self.log(f"workload {self.crash_rt_id} ({':'.join(t.good_image)}, exits 1) deployed; watching it")
        return await self._expect_failure(self.crash_rt_id, ("CrashLoopBackOff",))

    async def _expect_failure(self, rt_id: str, markers: tuple[str, ...]) -> str:
        """Live progress naming one of ``markers``, then ``Error``: what a hopeless deploy must show."""
        t = self.target
        seen_progress: list[str] = []
        shown: set[str] = set()
        last: dict[str, Any] = {}

        async def failed_or_progress() -> dict[str, Any] | None:
            last.update(await self._workload(rt_id))
            for message in last["progress"][len(seen_progress) :]:
                seen_progress.append(message)
                line = _short(_first_line(message), 140)
                if line not in shown:  # repeats differ only past the first line; show each once
                    shown.add(line)
                    self.log(f"live progress at the controller: {line}")
            return dict(last) if last["deploymentState"] in ("Deployed", "Error") else None

        workload = await eventually(
            failed_or_progress,
            timeout=t.timeouts.failure,
            what="final status",
            detail=lambda: _workload_summary(last),
        )
        matching = [m for m in seen_progress if any(marker in m for marker in markers)]
        if workload["deploymentState"] != "Error":
            raise StepFailed(f"expected Error, got {workload['deploymentState']}")
        if not matching:
            raise StepFailed(
                f"failed, but no live progress mentioned {' or '.join(markers)} (progress: {seen_progress})"
            )
        status = _first_line(workload["statusMessage"])
        self.log(f"final status at the controller: Error: {_short(status, 140)}")
        await self._show_pods()
        found = sorted({marker for marker in markers for m in matching if marker in m})
        return (
            f"{len(seen_progress)} live progress report(s) incl. {', '.join(found)}; "
            f"then Error: {_short(status.replace(self.release(rt_id), '<release>'), 90)}"
        )

    async def restart_controller(self) -> str:
        t = self.target
        if t.restart_controller is None:
            raise StepFailed("this target cannot restart its controller")
        assert self.pool_rt_id is not None
        pool_rt_id = self.pool_rt_id
        how = await t.restart_controller()
        self.log(f"controller restarted ({how}); waiting for the operator to register again")

        async def registered_again() -> list[dict[str, Any]] | None:
            calls = await self.admin.calls()
            operator = [c for c in calls if c["method"] == "RegisterOperatorAsync" and not c["error"]]
            pool = [
                c
                for c in calls
                if c["method"] == "RegisterPoolAsync" and not c["error"] and pool_rt_id in c["arguments"]
            ]
            reports = [c for c in calls if c["method"] == "ReportDeployedStateAsync" and not c["error"]]
            return reports if operator and pool and reports else None

        reports = await eventually(
            registered_again,
            timeout=t.timeouts.restart,
            what="RegisterOperatorAsync + RegisterPoolAsync + ReportDeployedStateAsync after the restart",
        )
        online = await eventually(self._pool_registered, timeout=t.timeouts.restart, what="pool Online")
        state = await self.admin.state()
        tracked = any(
            {"tenantId": t.tenant_id, "poolRtId": pool_rt_id} in c["pools"] for c in state["connections"]
        )
        if not tracked:
            raise StepFailed("pool Online in the stored state, but no live connection registered it")
        reported = {
            rt_id
            for call in reports
            for pool in call["arguments"][0]
            if pool["poolRtId"] == pool_rt_id
            for rt_id in pool.get("workloadRtIds") or []
        }
        observed = f"re-registered; {online}"
        if self.good_deployed and self.good_rt_id is not None:
            if self.good_rt_id not in reported:
                raise StepFailed(
                    f"{observed}, but the deployed-state report lacks the good workload ({reported})"
                )
            workload = await self._workload(self.good_rt_id)
            if workload["deploymentState"] != "Deployed":
                raise StepFailed(f"{observed}, but the good workload is {workload['deploymentState']}")
            observed += "; good workload reported Deployed"
        else:
            observed += "; no deployed workload to report (step 2 did not pass)"
        return observed

    async def undeploy_workloads(self) -> str:
        t = self.target
        rt_ids = [rt_id for rt_id in (self.good_rt_id, self.bad_rt_id, self.crash_rt_id) if rt_id is not None]
        if not rt_ids:
            raise StepFailed("no workload was created by the earlier steps")
        # Only a release that exists can demonstrate its removal; a deploy that failed before helm
        # installed anything leaves none (the bad image's release may or may not remain, by design).
        installed = [rt_id for rt_id in rt_ids if await self.kube.release_statuses(self.release(rt_id))]
        for rt_id in rt_ids:
            workload = await self._workload(rt_id)
            if workload["deploymentState"] in ("Pending", "Deployed", "Error"):
                await self.admin.undeploy_workload(rt_id)
        self.log(
            f"undeployed {len(rt_ids)} workload(s) with {len(installed)} helm release(s); "
            "waiting for releases and pods to go"
        )
        if not installed:
            raise StepFailed("nothing to remove: none of the workloads had a helm release")
        for rt_id in rt_ids:
            release = self.release(rt_id)

            async def gone(release: str = release) -> bool:
                return not await self.kube.release_statuses(release) and not await self.kube.pods(release)

            await eventually(gone, timeout=t.timeouts.undeploy, what=f"removal of release {release}")
        names = ", ".join(self.release(rt_id) for rt_id in installed)
        return f"{len(installed)} release(s) uninstalled ({names}) and their pods gone"

    async def undeploy_pool(self) -> str:
        t = self.target
        assert self.pool_rt_id is not None
        await self.admin.undeploy_pool(self.pool_rt_id)
        self.log(f"pool {self.pool_rt_id} undeployed at the controller; waiting for the CR to go")

        async def cr_gone() -> bool:
            return await self.kube.pool(self.pool_cr) is None

        await eventually(cr_gone, timeout=t.timeouts.undeploy, what=f"deletion of CR {self.pool_cr}")
        secret = broker_secret_name(self.pool_cr)

        async def secret_gone() -> bool:
            return not await self.kube.secret_exists(secret)

        await eventually(secret_gone, timeout=t.timeouts.undeploy, what=f"deletion of Secret {secret}")
        state = await self._pool_state()
        return f"CR and broker secret gone; controller: {state['communicationState']}"


@dataclass(frozen=True)
class StepSpec:
    key: str  # for picking steps: ``steps("pool", "undeploy-pool")``
    title: str
    expected: str
    run: Callable[[Story], Awaitable[str]]


STEPS: Sequence[StepSpec] = (
    StepSpec(
        "pool",
        "deploy a Cloud pool",
        "CR + broker secret appear, pool Online",
        Story.deploy_pool,
    ),
    StepSpec(
        "good-workload",
        "deploy a good workload",
        "Deployed; release deployed, pod Ready",
        Story.deploy_good_workload,
    ),
    StepSpec(
        "bad-image",
        "deploy a workload with a bad image",
        "live ImagePullBackOff progress, then Error",
        Story.deploy_bad_workload,
    ),
    StepSpec(
        "restart",
        "restart the controller",
        "operator re-registers; pool Online, Deployed state reported",
        Story.restart_controller,
    ),
    StepSpec(
        "undeploy-workloads",
        "undeploy both workloads",
        "releases and pods gone",
        Story.undeploy_workloads,
    ),
    StepSpec(
        "undeploy-pool",
        "undeploy the pool",
        "CR and broker secret gone",
        Story.undeploy_pool,
    ),
)


#: The story on a real node: a real crash loop after the real image pull failure.
REAL_NODE_STEPS: Sequence[StepSpec] = (
    *STEPS[:3],
    StepSpec(
        "crash-loop",
        "deploy a workload that crashes",
        "live CrashLoopBackOff progress, then Error",
        Story.deploy_crash_workload,
    ),
    *STEPS[3:],
)


def steps(*keys: str) -> list[StepSpec]:
    """The named steps in story order; an unknown key is an error naming the known ones."""
    known = {spec.key: spec for spec in REAL_NODE_STEPS}
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise KeyError(f"unknown story step(s) {unknown}; known: {sorted(known)}")
    return [spec for spec in REAL_NODE_STEPS if spec.key in keys]


async def run_story(
    target: StoryTarget,
    log_line: Log = print,
    *,
    steps: Sequence[StepSpec] = STEPS,
    clock: Callable[[], float] | None = None,
    results: list[StepResult] | None = None,
) -> list[StepResult]:
    """Play ``steps`` in order; one log line when a step starts and one when it ends, with the time
    since ``clock``'s zero. A failing first step (the pool) stops the story: the rest need the pool.

    The results are filled into ``results`` (if given) as the story goes, so a caller that is
    interrupted still has the steps played so far."""
    start = time.monotonic()

    def elapsed() -> float:
        return clock() if clock is not None else time.monotonic() - start

    def say(line: str) -> None:
        log_line(f"[{elapsed():6.1f}s] {line}")

    story = Story(target, lambda line: say(f"    {line}"))
    results = results if results is not None else []
    results[:] = [StepResult(n, spec.title, spec.expected) for n, spec in enumerate(steps, 1)]
    for spec, result in zip(steps, results, strict=True):
        if story.pool_rt_id is None and result.number > 1:
            result.observed = "needs the pool from step 1"
            say(f"step {result.number}/{len(steps)} {spec.title}: NOT RUN ({result.observed})")
            continue
        say(f"step {result.number}/{len(steps)} {spec.title}: expect {spec.expected}")
        began = time.monotonic()
        try:
            result.observed = await spec.run(story)
            result.passed = True
        except StepFailed as exc:
            result.observed, result.passed = str(exc), False
        except (asyncio.CancelledError, KeyboardInterrupt):
            result.observed, result.passed = "interrupted", False
            result.seconds = time.monotonic() - began
            raise
        except Exception as exc:  # an unexpected error is this step's failure, not the demo's crash
            log.debug("step %s failed", spec.title, exc_info=True)
            result.observed, result.passed = f"{type(exc).__name__}: {_short(str(exc), 200)}", False
        finally:
            result.seconds = time.monotonic() - began
        say(
            f"step {result.number}/{len(steps)} {result.verdict} in {result.seconds:.1f} s: {result.observed}"
        )
    return results


def render_summary(
    results: Sequence[StepResult],
    *,
    expected_width: int = 34,
    observed_width: int = 60,
    node: str | None = None,
) -> str:
    """The summary table: step, expected, observed, verdict, seconds (long cells are wrapped);
    ``node`` (which node ran the pods) heads it when given."""
    header = ("#", "step", "expected", "observed", "result", "seconds")
    rows: list[tuple[str, ...]] = []
    for r in results:
        expected = textwrap.wrap(r.expected, expected_width) or ["-"]
        observed = textwrap.wrap(r.observed or "-", observed_width) or ["-"]
        lines = max(len(expected), len(observed))
        expected += [""] * (lines - len(expected))
        observed += [""] * (lines - len(observed))
        rows.append((str(r.number), r.title, expected[0], observed[0], r.verdict, f"{r.seconds:.1f}"))
        rows.extend(("", "", e, o, "", "") for e, o in zip(expected[1:], observed[1:], strict=True))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    passed = sum(1 for r in results if r.passed)
    total = sum(r.seconds for r in results)
    verdict = (
        "ALL STEPS PASSED" if passed == len(results) else f"{len(results) - passed} STEP(S) DID NOT PASS"
    )
    footer = f"{passed}/{len(results)} steps passed in {total:.1f} s: {verdict}"
    heading = [f"node: {node}"] if node else []
    return "\n".join([*heading, line(header), rule, *(line(row) for row in rows), rule, footer])


def all_passed(results: Sequence[StepResult]) -> bool:
    return bool(results) and all(r.passed for r in results)
