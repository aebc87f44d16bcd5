"""What a kubelet (and the scheduler) would write for a pod, as a timed script of status patches and
events. Pure functions over the pod's JSON, so the statuses are unit-testable without a cluster.

A plan is an iterator of `Step`s: wait ``after`` seconds, merge-patch ``status`` into `pods/status`,
then record ``events``. Crash loops with a restart interval yield steps forever.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from octo_devtools.devcluster.rules import (
    Behaviour,
    CrashLoopBackOffParams,
    CreateContainerConfigErrorParams,
    ImagePullBackOffParams,
    InvalidImageNameParams,
    NotReadyParams,
    ReadyParams,
    Rule,
    RunToCompletionParams,
    UnschedulableParams,
    make_rule,
    qualified_image,
    select_rule,
)

SCHEDULER = "default-scheduler"
KUBELET = "kubelet"
NORMAL = "Normal"
WARNING = "Warning"

# When several containers match failing rules, the pod follows the most severe one.
_SEVERITY = {
    Behaviour.IGNORE: 0,
    Behaviour.READY: 1,
    Behaviour.RUN_TO_COMPLETION: 2,
    Behaviour.NOT_READY: 3,
    Behaviour.CRASH_LOOP_BACKOFF: 4,
    Behaviour.CREATE_CONTAINER_CONFIG_ERROR: 5,
    Behaviour.IMAGE_PULL_BACKOFF: 6,
    Behaviour.INVALID_IMAGE_NAME: 7,
    Behaviour.UNSCHEDULABLE: 8,
}


@dataclass(frozen=True)
class EventSpec:
    """One core/v1 Event about the pod (or one of its containers when ``container`` is set)."""

    type: str
    reason: str
    message: str
    component: str = KUBELET
    container: str | None = None

    @property
    def field_path(self) -> str | None:
        return f"spec.containers{{{self.container}}}" if self.container else None


@dataclass(frozen=True)
class Step:
    after: float
    status: dict[str, Any] | None
    events: list[EventSpec] = field(default_factory=list)
    bind: bool = False  # schedule the pod onto the node before this step


@dataclass(frozen=True)
class NodeInfo:
    name: str = "devcluster-node"
    host_ip: str = "172.18.0.2"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String() for whole seconds: 40s, 1m20s, 5m0s."""
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def crash_backoff(restart_count: int) -> float:
    """kubelet's restart back-off: 10 s doubling per restart, capped at 5 minutes."""
    return float(min(10 * 2 ** max(restart_count - 1, 0), 300))


def _fake_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def default_rule(pod: dict[str, Any]) -> Rule:
    # Job-style pods finish; everything else keeps running.
    if pod.get("spec", {}).get("restartPolicy", "Always") in ("Never", "OnFailure"):
        return make_rule("*", Behaviour.RUN_TO_COMPLETION)
    return make_rule("*", Behaviour.READY)


@dataclass
class _Container:
    name: str
    image: str
    rule: Rule

    @property
    def qualified(self) -> str:
        return qualified_image(self.image)

    def image_id(self) -> str:
        repository = self.qualified.split("@", 1)[0].rsplit(":", 1)[0]
        return f"{repository}@sha256:{_fake_digest(self.qualified)}"

    def container_id(self, pod_uid: str, restart: int = 0) -> str:
        return f"containerd://{_fake_digest(f'{pod_uid}/{self.name}/{restart}')}"


class PodPlanner:
    """Plans one pod. ``now`` is injectable so tests get stable timestamps."""

    def __init__(
        self,
        pod: dict[str, Any],
        rules: Sequence[Rule],
        node: NodeInfo,
        pod_ip: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.pod = pod
        self.node = node
        self.pod_ip = pod_ip
        self.clock = clock or (lambda: datetime.now(UTC))
        self.started = self.clock()
        # Timestamps are taken when a step is built, which is `after` seconds before it is applied.
        self._offset = 0.0
        metadata = pod.get("metadata", {})
        self.name: str = metadata.get("name", "")
        self.namespace: str = metadata.get("namespace", "")
        self.uid: str = metadata.get("uid", "")
        fallback = default_rule(pod)
        self.containers = [
            _Container(c["name"], c.get("image", ""), select_rule(rules, c.get("image", "")) or fallback)
            for c in pod.get("spec", {}).get("containers", [])
        ]
        self.init_containers = [
            _Container(c["name"], c.get("image", ""), fallback)
            for c in pod.get("spec", {}).get("initContainers", [])
        ]
        self.driver = max(
            (c.rule for c in self.containers), key=lambda r: _SEVERITY[r.behaviour], default=fallback
        )

    # -- building blocks -------------------------------------------------------------------------

    def _ts(self, offset: float = 0.0) -> str:
        return rfc3339(self.clock() + timedelta(seconds=self._offset + offset))

    def _conditions(self, ready: bool, unready: list[str], completed: bool = False) -> list[dict[str, Any]]:
        ts = self._ts()

        def cond(
            kind: str, ok: bool, reason: str | None = None, message: str | None = None
        ) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "type": kind,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": ts,
            }
            if reason:
                entry["reason"] = reason
            if message:
                entry["message"] = message
            return entry

        if completed:
            not_ready: tuple[str | None, str | None] = ("PodCompleted", None)
        else:
            not_ready = ("ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
        return [
            cond("Initialized", True, "PodCompleted" if completed and self.init_containers else None),
            cond("Ready", ready, *(not_ready if not ready else (None, None))),
            cond("ContainersReady", ready, *(not_ready if not ready else (None, None))),
            cond("PodScheduled", True),
        ]

    def _status(
        self,
        phase: str,
        statuses: list[dict[str, Any]],
        completed: bool = False,
    ) -> dict[str, Any]:
        unready = [s["name"] for s in statuses if not s["ready"]]
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": self._conditions(not unready and not completed, unready, completed),
            "hostIP": self.node.host_ip,
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": rfc3339(self.started),
            "containerStatuses": statuses,
        }
        if self.init_containers:
            status["initContainerStatuses"] = [
                self._container_status(
                    c,
                    {"terminated": self._terminated(c, 0, "Completed", 0.0, 0.1)},
                    ready=False,
                    started=False,
                )
                for c in self.init_containers
            ]
        return status

    def _terminated(
        self, c: _Container, exit_code: int, reason: str, start: float, end: float, restart: int = 0
    ) -> dict[str, Any]:
        return {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": self._ts(start),
            "finishedAt": self._ts(end),
            "containerID": c.container_id(self.uid, restart),
        }

    def _container_status(
        self,
        c: _Container,
        state: dict[str, Any],
        *,
        ready: bool,
        started: bool,
        restart_count: int = 0,
        last_state: dict[str, Any] | None = None,
        image_pulled: bool = True,
    ) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": c.name,
            "state": state,
            "lastState": last_state or {},
            "ready": ready,
            "restartCount": restart_count,
            "image": c.qualified if image_pulled else c.image,
            "imageID": c.image_id() if image_pulled else "",
            "started": started,
        }
        if "running" in state or "terminated" in state or last_state:
            status["containerID"] = c.container_id(self.uid, restart_count)
        return status

    def _running(self, c: _Container, ready: bool = True) -> dict[str, Any]:
        return self._container_status(c, {"running": {"startedAt": self._ts()}}, ready=ready, started=True)

    def _waiting(self, c: _Container, reason: str, message: str | None = None, **kw: Any) -> dict[str, Any]:
        waiting = {"reason": reason} if message is None else {"reason": reason, "message": message}
        return self._container_status(c, {"waiting": waiting}, ready=False, started=False, **kw)

    def _start_events(self, c: _Container) -> list[EventSpec]:
        return [
            EventSpec(
                NORMAL, "Pulled", f'Container image "{c.image}" already present on machine', container=c.name
            ),
            EventSpec(NORMAL, "Created", f"Created container {c.name}", container=c.name),
            EventSpec(NORMAL, "Started", f"Started container {c.name}", container=c.name),
        ]

    def _scheduled_event(self) -> EventSpec:
        return EventSpec(
            NORMAL,
            "Scheduled",
            f"Successfully assigned {self.namespace}/{self.name} to {self.node.name}",
            component=SCHEDULER,
        )

    def _healthy_others(self, failing: _Container) -> tuple[list[dict[str, Any]], list[EventSpec]]:
        """Statuses/events of the containers that are not the failing ones (they run normally)."""
        statuses: list[dict[str, Any]] = []
        events: list[EventSpec] = []
        for c in self.containers:
            if c.rule is self.driver:
                continue
            statuses.append(self._running(c, ready=c.rule.behaviour is not Behaviour.NOT_READY))
            events += self._start_events(c)
        del failing
        return statuses, events

    # -- the plan --------------------------------------------------------------------------------

    def steps(self) -> Iterator[Step]:
        behaviour = self.driver.behaviour
        if behaviour is Behaviour.IGNORE:
            return
        if behaviour is Behaviour.UNSCHEDULABLE:
            yield from self._unschedulable()
            return
        failing = [c for c in self.containers if c.rule is self.driver]
        others, other_events = self._healthy_others(failing[0]) if failing else ([], [])
        scheduled = [self._scheduled_event()]
        order = [c.name for c in self.containers]

        def merged(own: list[dict[str, Any]]) -> list[dict[str, Any]]:
            by_name = {s["name"]: s for s in own + others}
            return [by_name[n] for n in order]

        if behaviour is Behaviour.READY:
            yield from self._ready(failing, merged, scheduled + other_events)
        elif behaviour is Behaviour.NOT_READY:
            params = self.driver.params
            assert isinstance(params, NotReadyParams)
            statuses = [self._running(c, ready=False) for c in failing]
            events = [e for c in failing for e in self._start_events(c)]
            events += [EventSpec(WARNING, "Unhealthy", params.message, container=c.name) for c in failing]
            yield Step(
                0.0, self._status("Running", merged(statuses)), scheduled + other_events + events, bind=True
            )
        elif behaviour is Behaviour.IMAGE_PULL_BACKOFF:
            yield from self._image_pull_backoff(failing, merged, scheduled + other_events)
        elif behaviour is Behaviour.CRASH_LOOP_BACKOFF:
            yield from self._crash_loop(failing, merged, scheduled + other_events)
        elif behaviour is Behaviour.CREATE_CONTAINER_CONFIG_ERROR:
            params = self.driver.params
            assert isinstance(params, CreateContainerConfigErrorParams)
            statuses = [self._waiting(c, "CreateContainerConfigError", params.message) for c in failing]
            events = [
                EventSpec(
                    NORMAL,
                    "Pulled",
                    f'Container image "{c.image}" already present on machine',
                    container=c.name,
                )
                for c in failing
            ]
            events += [
                EventSpec(WARNING, "Failed", f"Error: {params.message}", container=c.name) for c in failing
            ]
            yield Step(
                0.0, self._status("Pending", merged(statuses)), scheduled + other_events + events, bind=True
            )
        elif behaviour is Behaviour.INVALID_IMAGE_NAME:
            params = self.driver.params
            assert isinstance(params, InvalidImageNameParams)
            statuses, events = [], []
            for c in failing:
                message = params.message or (
                    f'Failed to apply default image tag "{c.image}": couldn\'t parse image reference '
                    f'"{c.image}": invalid reference format'
                )
                statuses.append(self._waiting(c, "InvalidImageName", message, image_pulled=False))
                events += [
                    EventSpec(WARNING, "InspectFailed", message, container=c.name),
                    EventSpec(WARNING, "Failed", "Error: InvalidImageName", container=c.name),
                ]
            yield Step(
                0.0, self._status("Pending", merged(statuses)), scheduled + other_events + events, bind=True
            )
        elif behaviour is Behaviour.RUN_TO_COMPLETION:
            yield from self._run_to_completion(failing, merged, scheduled + other_events)

    def _unschedulable(self) -> Iterator[Step]:
        params = self.driver.params
        assert isinstance(params, UnschedulableParams)
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": self._ts(),
                    "reason": "Unschedulable",
                    "message": params.message,
                }
            ],
        }
        yield Step(0.0, status, [EventSpec(WARNING, "FailedScheduling", params.message, component=SCHEDULER)])

    def _ready(self, failing: list[_Container], merged: Any, first_events: list[EventSpec]) -> Iterator[Step]:
        params = self.driver.params
        assert isinstance(params, ReadyParams)
        if params.delay > 0:
            creating = [self._waiting(c, "ContainerCreating", image_pulled=False) for c in failing]
            yield Step(0.0, self._status("Pending", merged(creating)), first_events, bind=True)
            first_events = []
        events = [e for c in failing for e in self._start_events(c)]
        self._offset = params.delay
        yield Step(
            params.delay,
            self._status("Running", merged([self._running(c) for c in failing])),
            first_events + events,
            bind=params.delay == 0,
        )

    def _image_pull_backoff(
        self, failing: list[_Container], merged: Any, first_events: list[EventSpec]
    ) -> Iterator[Step]:
        params = self.driver.params
        assert isinstance(params, ImagePullBackOffParams)
        pulling, err_statuses, backoff_statuses, backoff_events = [], [], [], []
        for c in failing:
            ref = c.qualified
            error = params.message or (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
                f'failed to resolve reference "{ref}": {ref}: not found'
            )
            pulling += [
                EventSpec(NORMAL, "Pulling", f'Pulling image "{c.image}"', container=c.name),
                EventSpec(WARNING, "Failed", f'Failed to pull image "{c.image}": {error}', container=c.name),
                EventSpec(WARNING, "Failed", "Error: ErrImagePull", container=c.name),
            ]
            err_statuses.append(self._waiting(c, "ErrImagePull", error, image_pulled=False))
            backoff = f'Back-off pulling image "{c.image}"'
            backoff_statuses.append(self._waiting(c, "ImagePullBackOff", backoff, image_pulled=False))
            backoff_events += [
                EventSpec(NORMAL, "BackOff", backoff, container=c.name),
                EventSpec(WARNING, "Failed", "Error: ImagePullBackOff", container=c.name),
            ]
        yield Step(0.0, self._status("Pending", merged(err_statuses)), first_events + pulling, bind=True)
        self._offset = params.backoff_after
        yield Step(params.backoff_after, self._status("Pending", merged(backoff_statuses)), backoff_events)

    def _crash_loop(
        self, failing: list[_Container], merged: Any, first_events: list[EventSpec]
    ) -> Iterator[Step]:
        params = self.driver.params
        assert isinstance(params, CrashLoopBackOffParams)
        restarts = params.restart_count
        events = [e for c in failing for e in self._start_events(c)]
        after = 0.0
        bind = True
        while True:
            self._offset = after
            statuses = []
            for c in failing:
                terminated = self._terminated(c, params.exit_code, params.reason, -1.0, 0.0, restarts - 1)
                if params.message:
                    terminated["message"] = params.message
                message = (
                    f"back-off {go_duration(crash_backoff(restarts))} restarting failed "
                    f"container={c.name} pod={self.name}_{self.namespace}({self.uid})"
                )
                statuses.append(
                    self._waiting(
                        c,
                        "CrashLoopBackOff",
                        message,
                        restart_count=restarts,
                        last_state={"terminated": terminated},
                    )
                )
            events += [
                EventSpec(WARNING, "BackOff", "Back-off restarting failed container", container=c.name)
                for c in failing
            ]
            yield Step(after, self._status("Running", merged(statuses)), first_events + events, bind=bind)
            if params.restart_interval is None:
                return
            first_events, bind, after = [], False, params.restart_interval
            restarts += 1
            events = [e for c in failing for e in self._start_events(c)[1:]]  # Created, Started again

    def _run_to_completion(
        self, failing: list[_Container], merged: Any, first_events: list[EventSpec]
    ) -> Iterator[Step]:
        params = self.driver.params
        assert isinstance(params, RunToCompletionParams)
        events = [e for c in failing for e in self._start_events(c)]
        yield Step(
            0.0,
            self._status("Running", merged([self._running(c) for c in failing])),
            first_events + events,
            bind=True,
        )
        reason = "Completed" if params.exit_code == 0 else "Error"
        self._offset = params.run_seconds
        done = [
            self._container_status(
                c,
                {"terminated": self._terminated(c, params.exit_code, reason, -params.run_seconds, 0.0)},
                ready=False,
                started=False,
            )
            for c in failing
        ]
        phase = "Succeeded" if params.exit_code == 0 else "Failed"
        yield Step(params.run_seconds, self._status(phase, merged(done), completed=True), [])
