"""Failure signals from a release's pods and Warning events, and when to give up early.

Input is what the Kubernetes API returns as JSON (camelCase keys): ``v1.Pod`` objects and
``v1.Event`` objects (``core/v1``; events written through ``events.k8s.io`` appear there with
``eventTime``/``series`` instead of ``firstTimestamp``/``count``). Nothing here does I/O; times are
passed in by the caller (a monotonic clock in seconds).

Three layers:

* :func:`classify_pod` and :func:`classify_event` — pure: one object in, :class:`Signal` values out.
  Container signals come from ``status.containerStatuses`` and ``status.initContainerStatuses``
  (waiting reasons other than ``ContainerCreating``/``PodInitializing``, non-zero terminations);
  pod signals from the ``PodScheduled`` condition and a failed phase (``Evicted`` and the like);
  event signals from ``FailedScheduling``, ``FailedMount``/``FailedAttachVolume``, ``FailedCreate``
  (quota, admission and PodSecurity refusals on ReplicaSets, Jobs, StatefulSets, where no pod
  appears), probe failures, and any other Warning. Events that only repeat what the pod status says
  (``Failed``/``BackOff`` on a pod) give no signal.
* :class:`FailFastPolicy` and :func:`is_fatal` — pure: whether a signal that has persisted for so
  long is hopeless enough to cancel helm instead of waiting for its timeout.
* :class:`SignalSet` — the current signals of one deploy, fed by a watcher; it answers "did the set
  change?" (so a progress report is sent only then), clears a pod's signals when the pod becomes
  Ready or is deleted, and tracks how long each problem has persisted for the policy.

:func:`describe` renders one signal as a line; ``diagnostics.fit_lines`` bounds the lines of a report.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from communication_operator.redaction import redact, truncate_middle

#: Waiting reasons that are normal progress, not problems.
BENIGN_WAITING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})

#: Pod event reasons whose content the pod status already carries.
_POD_STATUS_ECHO_REASONS = frozenset(
    {"Failed", "BackOff", "InspectFailed", "ErrImageNeverPull", "Evicted", "FailedSync"}
)

#: Image pull errors that waiting will not fix (unlike a registry hiccup or rate limit).
_HARD_PULL_ERROR = re.compile(
    r"not found|manifest unknown|unauthorized|authentication required|access denied|"
    r"pull access denied|denied: |forbidden|repository does not exist|invalid reference format|"
    r"no such host",
    re.IGNORECASE,
)
_FIELD_PATH = re.compile(
    r"^spec\.(?P<section>containers|initContainers|ephemeralContainers)\{(?P<name>[^}]*)\}"
)
_WHITESPACE = re.compile(r"\s+")


class SignalKind(StrEnum):
    INVALID_IMAGE_NAME = "InvalidImageName"
    ERR_IMAGE_PULL = "ErrImagePull"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    CONTAINER_FAILED = "ContainerFailed"  # terminated with a non-zero exit code, not (yet) backing off
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    RUN_CONTAINER_ERROR = "RunContainerError"
    CONTAINER_WAITING = "ContainerWaiting"  # any other waiting reason (ErrImageNeverPull, hook errors…)
    ADMISSION_REFUSED = "AdmissionRefused"  # FailedCreate: quota, webhook, PodSecurity…
    UNSCHEDULABLE = "Unschedulable"
    VOLUME_FAILURE = "VolumeFailure"  # FailedMount, FailedAttachVolume, ProvisioningFailed…
    EVICTED = "Evicted"
    POD_FAILED = "PodFailed"  # pod phase Failed for a reason other than eviction
    PROBE_FAILED = "ProbeFailed"
    WARNING = "Warning"  # any other Warning event


#: Display order, most decisive first.
SEVERITY: Mapping[SignalKind, int] = {kind: rank for rank, kind in enumerate(SignalKind)}

_WAITING_KINDS: Mapping[str, SignalKind] = {
    "InvalidImageName": SignalKind.INVALID_IMAGE_NAME,
    "ErrImagePull": SignalKind.ERR_IMAGE_PULL,
    "ImagePullBackOff": SignalKind.IMAGE_PULL_BACK_OFF,
    "CrashLoopBackOff": SignalKind.CRASH_LOOP_BACK_OFF,
    "CreateContainerConfigError": SignalKind.CREATE_CONTAINER_CONFIG_ERROR,
    "CreateContainerError": SignalKind.CREATE_CONTAINER_ERROR,
    "RunContainerError": SignalKind.RUN_CONTAINER_ERROR,
}

_VOLUME_EVENT_REASONS = frozenset(
    {"FailedMount", "FailedAttachVolume", "FailedMapVolume", "ProvisioningFailed", "FailedBinding"}
)

#: Kinds whose persistence is measured together (a pull alternates ErrImagePull/ImagePullBackOff).
_GROUPS: Mapping[SignalKind, str] = {
    SignalKind.ERR_IMAGE_PULL: "image-pull",
    SignalKind.IMAGE_PULL_BACK_OFF: "image-pull",
    SignalKind.CRASH_LOOP_BACK_OFF: "crash",
    SignalKind.CONTAINER_FAILED: "crash",
}


@dataclass(frozen=True)
class Signal:
    """One problem with one object (and container), as the cluster reports it.

    ``object_kind``/``object_name`` name the pod, or the owner (ReplicaSet, Job…) for refusals
    where no pod exists. ``reason`` is the API's own word (waiting reason, condition or event
    reason); ``detail`` adds context the message lacks (the last pull error behind a back-off).
    ``fatal`` is set by the policy (:meth:`SignalSet.signals`) and ignored in comparisons, so a
    signal turning fatal does not by itself count as a change of the set.
    """

    kind: SignalKind
    object_kind: str
    object_name: str
    reason: str
    message: str = ""
    container: str | None = None
    init_container: bool = False
    exit_code: int | None = None
    termination_reason: str | None = None  # e.g. OOMKilled, Error
    restart_count: int = 0
    occurrences: int = 1  # event count; failed pulls seen
    detail: str = ""
    fatal: bool = field(default=False, compare=False)

    @property
    def pod(self) -> str | None:
        return self.object_name if self.object_kind == "Pod" else None

    @property
    def identity(self) -> tuple[str, str, str, str, bool]:
        """What the signal is about: kind, object and container (not the changing message)."""
        return (
            self.kind.value,
            self.object_kind,
            self.object_name,
            self.container or "",
            self.init_container,
        )

    @property
    def persistence_key(self) -> tuple[str, str, str, str, bool]:
        """Signals with one key share one "how long has this lasted" clock."""
        group = _GROUPS.get(self.kind, self.kind.value)
        return (group, self.object_kind, self.object_name, self.container or "", self.init_container)

    @property
    def is_hard_pull_error(self) -> bool:
        """An image pull error that retrying will not fix (not found, unauthorised, bad reference)."""
        if self.kind not in (SignalKind.ERR_IMAGE_PULL, SignalKind.IMAGE_PULL_BACK_OFF):
            return False
        return _HARD_PULL_ERROR.search(f"{self.message}\n{self.detail}") is not None


# ---------------------------------------------------------------------------------------------
# Classification


def classify_pod(pod: Mapping[str, Any], secrets: Iterable[str] = ()) -> list[Signal]:
    """Signals from one pod's status (no events): containers, init containers, scheduling, phase.

    Messages are redacted of ``secrets`` before their whitespace is collapsed (:func:`clean_text`).
    """
    secret_list = list(secrets)
    name = _str(get_path(pod, "metadata", "name"))
    status = _map(pod.get("status"))
    if get_path(pod, "metadata", "deletionTimestamp") is not None:
        return []  # shutting down (an old replica during a rollout): its exit codes are expected
    signals: list[Signal] = []

    phase_reason = _str(status.get("reason"))
    if _str(status.get("phase")) == "Failed":
        message = clean_text(status.get("message"), secret_list)
        if phase_reason == "Evicted":
            # The containers were killed by the eviction; their exit codes add nothing.
            return [Signal(SignalKind.EVICTED, "Pod", name, "Evicted", message)]
        if phase_reason:  # refused by the kubelet (OutOfcpu, NodeAffinity…) or DeadlineExceeded
            signals.append(Signal(SignalKind.POD_FAILED, "Pod", name, phase_reason, message))

    for condition in _list(status.get("conditions")):
        condition = _map(condition)
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            signals.append(
                Signal(
                    SignalKind.UNSCHEDULABLE,
                    "Pod",
                    name,
                    "Unschedulable",
                    clean_text(condition.get("message"), secret_list),
                )
            )

    for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses")):
        for container_status in _list(status.get(key)):
            signal = _classify_container(name, _map(container_status), secret_list, init=init)
            if signal is not None:
                signals.append(signal)
    return signals


def _classify_container(
    pod: str, status: Mapping[str, Any], secrets: list[str], *, init: bool
) -> Signal | None:
    container = _str(status.get("name"))
    restarts = _int(status.get("restartCount")) or 0
    state = _map(status.get("state"))
    last = _map(_map(status.get("lastState")).get("terminated"))
    waiting = _map(state.get("waiting"))
    terminated = _map(state.get("terminated"))

    if waiting:
        reason = _str(waiting.get("reason"))
        if not reason or reason in BENIGN_WAITING_REASONS:
            return None
        kind = _WAITING_KINDS.get(reason, SignalKind.CONTAINER_WAITING)
        return Signal(
            kind,
            "Pod",
            pod,
            reason,
            clean_text(waiting.get("message"), secrets),
            container=container,
            init_container=init,
            exit_code=_int(last.get("exitCode")) if last else None,
            termination_reason=(_str(last.get("reason")) or None) if last else None,
            restart_count=restarts,
        )
    if terminated:
        exit_code = _int(terminated.get("exitCode"))
        if not exit_code:
            return None
        reason = _str(terminated.get("reason")) or "Error"
        message = clean_text(terminated.get("message"), secrets)
        return Signal(
            SignalKind.CONTAINER_FAILED,
            "Pod",
            pod,
            reason,
            message or "terminated",
            container=container,
            init_container=init,
            exit_code=exit_code,
            termination_reason=reason,
            restart_count=restarts,
        )
    return None


def classify_event(event: Mapping[str, Any], secrets: Iterable[str] = ()) -> Signal | None:
    """The signal a Warning event stands for, or ``None`` (Normal events, echoes of the pod status)."""
    if event.get("type") != "Warning":
        return None
    involved = _map(event.get("involvedObject") or event.get("regarding"))
    object_kind = _str(involved.get("kind"))
    object_name = _str(involved.get("name"))
    reason = _str(event.get("reason"))
    message = clean_text(event.get("message") or event.get("note"), secrets)
    if not object_name or not reason:
        return None
    container, init = _container_of(involved)
    occurrences = event_count(event)

    def signal(kind: SignalKind) -> Signal:
        return Signal(
            kind,
            object_kind,
            object_name,
            reason,
            message,
            container=container,
            init_container=init,
            occurrences=occurrences,
        )

    if reason == "FailedScheduling":
        return signal(SignalKind.UNSCHEDULABLE)
    if reason in _VOLUME_EVENT_REASONS:
        return signal(SignalKind.VOLUME_FAILURE)
    if reason == "FailedCreate":
        return signal(SignalKind.ADMISSION_REFUSED)
    if reason == "Unhealthy":
        return signal(SignalKind.PROBE_FAILED)
    if object_kind == "Pod" and reason in _POD_STATUS_ECHO_REASONS:
        return None
    return signal(SignalKind.WARNING)


def pull_failure_from_event(
    event: Mapping[str, Any], secrets: Iterable[str] = ()
) -> tuple[str, str, bool, int, str] | None:
    """``(pod, container, init, count, message)`` for a kubelet "Failed to pull image" event, else ``None``.

    Such events echo the pod status, but their count is the number of failed pulls and their
    message keeps the registry's answer after the status has moved on to ``ImagePullBackOff``.
    """
    if event.get("type") != "Warning" or event.get("reason") != "Failed":
        return None
    involved = _map(event.get("involvedObject") or event.get("regarding"))
    message = clean_text(event.get("message") or event.get("note"), secrets)
    if involved.get("kind") != "Pod" or not message.startswith("Failed to pull image"):
        return None
    container, init = _container_of(involved)
    return (_str(involved.get("name")), container or "", init, event_count(event), message)


def event_count(event: Mapping[str, Any]) -> int:
    """How often the event occurred (``count``, or ``series.count`` for events.k8s.io events)."""
    count = _int(event.get("count")) or 1
    series = _int(_map(event.get("series")).get("count")) or 0
    return max(count, series)


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """When the event was last observed (falling back through the fields the API may leave empty)."""
    for value in (
        _map(event.get("series")).get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        get_path(event, "metadata", "creationTimestamp"),
    ):
        parsed = _parse_time(value)
        if parsed is not None:
            return parsed
    return None


def event_concerns_release(event: Mapping[str, Any], release: str, known_pods: Collection[str] = ()) -> bool:
    """True if the event is about one of the release's objects (named after it, or a known pod)."""
    name = _str(_map(event.get("involvedObject") or event.get("regarding")).get("name"))
    return name == release or name.startswith(f"{release}-") or name in known_pods


# ---------------------------------------------------------------------------------------------
# Fail-fast policy


@dataclass(frozen=True)
class FailFastPolicy:
    """When a signal is hopeless enough to cancel helm early. Times in seconds; ``None`` = never by time.

    Defaults follow the peers (octo anchors §1.6): an invalid image name is fatal at once; pull
    errors are often transient (Krane stopped failing on every back-off), so a plain back-off gets a
    long grace and "not found"/"unauthorized" a short one; crash loops fail after a few restarts;
    unschedulable pods get time for an autoscaler, config errors time for the chart's own ConfigMaps
    and Secrets to appear. Evictions, probe failures and other warnings never cancel a deploy.
    """

    enabled: bool = True
    image_pull_grace_seconds: float | None = 120.0
    hard_image_pull_grace_seconds: float | None = 20.0
    image_pull_failures: int | None = 4
    crash_loop_restarts: int | None = 3
    crash_loop_grace_seconds: float | None = None
    config_error_grace_seconds: float | None = 60.0
    unschedulable_grace_seconds: float | None = 120.0
    volume_grace_seconds: float | None = 120.0
    admission_grace_seconds: float | None = 60.0

    def grace_seconds(self, signal: Signal) -> float | None:
        """How long ``signal`` may persist before it is fatal; ``None`` if time alone never makes it so."""
        if not self.enabled:
            return None
        match signal.kind:
            case SignalKind.INVALID_IMAGE_NAME:
                return 0.0
            case SignalKind.ERR_IMAGE_PULL | SignalKind.IMAGE_PULL_BACK_OFF:
                if signal.is_hard_pull_error and self.hard_image_pull_grace_seconds is not None:
                    return _min_optional(self.hard_image_pull_grace_seconds, self.image_pull_grace_seconds)
                return self.image_pull_grace_seconds
            case SignalKind.CRASH_LOOP_BACK_OFF:
                return self.crash_loop_grace_seconds
            case (
                SignalKind.CREATE_CONTAINER_CONFIG_ERROR
                | SignalKind.CREATE_CONTAINER_ERROR
                | SignalKind.RUN_CONTAINER_ERROR
                | SignalKind.CONTAINER_WAITING
            ):
                return self.config_error_grace_seconds
            case SignalKind.UNSCHEDULABLE:
                return self.unschedulable_grace_seconds
            case SignalKind.VOLUME_FAILURE:
                return self.volume_grace_seconds
            case SignalKind.ADMISSION_REFUSED:
                return self.admission_grace_seconds
            case _:
                return None


def is_fatal(signal: Signal, persisted_seconds: float, policy: FailFastPolicy) -> bool:
    """Whether ``signal``, present for ``persisted_seconds``, should cancel the deploy now."""
    if not policy.enabled:
        return False
    if (
        signal.kind is SignalKind.CRASH_LOOP_BACK_OFF
        and policy.crash_loop_restarts is not None
        and signal.restart_count >= policy.crash_loop_restarts
    ):
        return True
    if (
        signal.kind in (SignalKind.ERR_IMAGE_PULL, SignalKind.IMAGE_PULL_BACK_OFF)
        and policy.image_pull_failures is not None
        and signal.occurrences >= policy.image_pull_failures
    ):
        return True
    grace = policy.grace_seconds(signal)
    return grace is not None and persisted_seconds >= grace


# ---------------------------------------------------------------------------------------------
# The current set


@dataclass
class _PodState:
    signals: tuple[Signal, ...]
    ready: bool
    scheduled: bool
    containers_started: bool
    owners: frozenset[tuple[str, str]]
    created: datetime | None


class SignalSet:
    """The current signals of one deploy, updated from watch events.

    Every ``observe_*``/``forget_*`` method returns True when the visible signals changed (kind,
    object, container, message or counts), which is when a progress report is due. ``now`` is the
    caller's monotonic clock in seconds; it measures how long a problem has persisted.

    Clearing rules: a pod that becomes Ready or is deleted loses its signals, including those from
    events about it, and its persistence clocks restart. Event signals about a pod also clear when
    the pod shows the problem is over (scheduled after ``FailedScheduling``, containers started after a
    mount failure). A ``FailedCreate`` on an owner clears once that owner has created a pod after the
    event. Events last observed before ``since`` (the deploy's start) are ignored. Pods created before
    ``since`` (old replicas the rollout replaces) are reported but never make the deploy fail fast:
    a crash-looping or unpullable old replica must not cancel the rollout that would replace it; if
    it is not replaced, helm's own timeout decides. Between two crashes
    a container runs for a moment; a crash loop seen before stays reported through that.
    """

    def __init__(
        self,
        policy: FailFastPolicy | None = None,
        *,
        since: datetime | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.policy = policy or FailFastPolicy()
        self.since = since
        self._secrets = [s for s in secrets if s]
        self._pods: dict[str, _PodState] = {}
        self._deleted_pods: set[str] = set()
        self._events: dict[str, tuple[Signal, datetime | None]] = {}
        self._pull_failures: dict[tuple[str, str, bool], tuple[int, str]] = {}
        self._first_seen: dict[tuple[str, str, str, str, bool], float] = {}

    # Feeding -------------------------------------------------------------------------------

    def observe_pod(self, pod: Mapping[str, Any], now: float) -> bool:
        """A pod was added or modified (or listed)."""
        before = self._visible()
        name = _str(get_path(pod, "metadata", "name"))
        if not name:
            return False
        if get_path(pod, "metadata", "deletionTimestamp") is None:
            self._deleted_pods.discard(name)
        signals = classify_pod(pod, self._secrets)
        previous = self._pods.get(name)
        ready = _pod_ready(pod)
        if previous is not None and not ready:
            signals = _carry_crash_loops(previous.signals, signals, pod)
        if ready:
            signals = []
            self._reset_pod_clocks(name)
        self._pods[name] = _PodState(
            signals=tuple(signals),
            ready=ready,
            scheduled=_pod_scheduled(pod),
            containers_started=_containers_started(pod),
            owners=frozenset(
                (_str(_map(ref).get("kind")), _str(_map(ref).get("name")))
                for ref in _list(get_path(pod, "metadata", "ownerReferences"))
            ),
            created=_parse_time(get_path(pod, "metadata", "creationTimestamp")),
        )
        self._count_pull_attempts(name, previous, signals)
        return self._settle(before, now)

    def forget_pod(self, name: str, now: float) -> bool:
        """A pod was deleted."""
        before = self._visible()
        self._pods.pop(name, None)
        self._deleted_pods.add(name)
        self._reset_pod_clocks(name)
        return self._settle(before, now)

    def observe_event(self, event: Mapping[str, Any], now: float) -> bool:
        """An event was added or modified (or listed); Normal and stale events are ignored."""
        before = self._visible()
        observed = event_time(event)
        if self.since is not None and observed is not None and observed < self.since:
            return False
        pull = pull_failure_from_event(event, self._secrets)
        if pull is not None:
            pod, container, init, count, message = pull
            known = self._pull_failures.get((pod, container, init), (0, ""))[0]
            self._pull_failures[(pod, container, init)] = (max(known, count), message)
        signal = classify_event(event, self._secrets)
        if signal is not None:
            self._events[_event_key(event)] = (signal, observed)
        return self._settle(before, now)

    def forget_event(self, event: Mapping[str, Any], now: float) -> bool:
        """An event was deleted (they expire after an hour)."""
        before = self._visible()
        self._events.pop(_event_key(event), None)
        return self._settle(before, now)

    # Reading -------------------------------------------------------------------------------

    def signals(self, now: float) -> tuple[Signal, ...]:
        """The current signals, sorted for display, each with ``fatal`` decided by the policy."""
        result = []
        for signal in self._visible():
            persisted = now - self._first_seen.get(signal.persistence_key, now)
            fatal = not self._predates_deploy(signal) and is_fatal(signal, persisted, self.policy)
            result.append(dataclasses.replace(signal, fatal=fatal))
        return tuple(sorted(result, key=sort_key))

    def fatal_signals(self, now: float) -> tuple[Signal, ...]:
        """The signals that should cancel the deploy now (empty: keep waiting)."""
        return tuple(signal for signal in self.signals(now) if signal.fatal)

    def next_deadline(self, now: float) -> float | None:
        """The clock time at which a present signal turns fatal by persistence alone, if any.

        A watcher waits for the next watch event or this time, whichever comes first, then asks
        :meth:`fatal_signals` again — no polling.
        """
        deadlines = []
        for signal in self._visible():
            grace = self.policy.grace_seconds(signal)
            if grace is None or self._predates_deploy(signal):
                continue
            deadline = self._first_seen.get(signal.persistence_key, now) + grace
            if deadline > now:
                deadlines.append(deadline)
        return min(deadlines, default=None)

    # Internals -----------------------------------------------------------------------------

    def _visible(self) -> tuple[Signal, ...]:
        from_pods = [signal for state in self._pods.values() for signal in state.signals]
        by_identity = {signal.identity for signal in from_pods}
        merged = [self._with_pull_history(signal) for signal in from_pods]
        seen_events: set[tuple[object, ...]] = set()
        for signal, observed in self._events.values():
            if signal.identity in by_identity or not self._event_still_relevant(signal, observed):
                continue
            key = (*signal.identity, signal.reason, signal.message)
            if key not in seen_events:
                seen_events.add(key)
                merged.append(signal)
        return tuple(sorted(merged, key=sort_key))

    def _event_still_relevant(self, signal: Signal, observed: datetime | None) -> bool:
        if signal.object_kind == "Pod":
            if signal.object_name in self._deleted_pods:
                return False
            state = self._pods.get(signal.object_name)
            if state is None:
                return True
            if state.ready:
                return False
            if signal.kind is SignalKind.UNSCHEDULABLE and state.scheduled:
                return False
            return not (signal.kind is SignalKind.VOLUME_FAILURE and state.containers_started)
        if signal.kind is SignalKind.ADMISSION_REFUSED and observed is not None:
            owner = (signal.object_kind, signal.object_name)
            for state in self._pods.values():
                if owner in state.owners and state.created is not None and state.created > observed:
                    return False
        return True

    def _predates_deploy(self, signal: Signal) -> bool:
        """A pod created before the deploy started (an old replica the rollout replaces)."""
        if self.since is None or signal.object_kind != "Pod":
            return False
        state = self._pods.get(signal.object_name)
        return state is not None and state.created is not None and state.created < self.since

    def _with_pull_history(self, signal: Signal) -> Signal:
        if signal.kind not in (SignalKind.ERR_IMAGE_PULL, SignalKind.IMAGE_PULL_BACK_OFF):
            return signal
        count, message = self._pull_failures.get(
            (signal.object_name, signal.container or "", signal.init_container), (0, "")
        )
        detail = message if message and message not in signal.message else signal.detail
        return dataclasses.replace(signal, occurrences=max(signal.occurrences, count), detail=detail)

    def _count_pull_attempts(self, pod: str, previous: _PodState | None, signals: Iterable[Signal]) -> None:
        """Each switch of a container into ErrImagePull is one more failed pull."""
        before = {s.identity for s in previous.signals} if previous else set()
        for signal in signals:
            if signal.kind is SignalKind.ERR_IMAGE_PULL and signal.identity not in before:
                key = (pod, signal.container or "", signal.init_container)
                count, message = self._pull_failures.get(key, (0, ""))
                self._pull_failures[key] = (count + 1, signal.message or message)

    def _reset_pod_clocks(self, pod: str) -> None:
        for key in [key for key in self._first_seen if key[1] == "Pod" and key[2] == pod]:
            del self._first_seen[key]
        for pull_key in [pull_key for pull_key in self._pull_failures if pull_key[0] == pod]:
            del self._pull_failures[pull_key]

    def _settle(self, before: tuple[Signal, ...], now: float) -> bool:
        after = self._visible()
        present = {signal.persistence_key for signal in after}
        for key in present:
            self._first_seen.setdefault(key, now)
        # Pod clocks survive a signal's brief absence (a crash loop between crashes) and end with
        # the pod's readiness or deletion; clocks of owner-level signals end with the signal.
        for key in [key for key in self._first_seen if key not in present and key[1] != "Pod"]:
            del self._first_seen[key]
        return after != before


def _carry_crash_loops(
    previous: Iterable[Signal], current: list[Signal], pod: Mapping[str, Any]
) -> list[Signal]:
    """Keep reporting a crash loop while its container runs (or has just died) between two crashes."""
    statuses = {
        (init, _str(_map(s).get("name"))): _map(s)
        for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses"))
        for s in _list(get_path(pod, "status", key))
    }
    by_container = {(s.init_container, s.container): s for s in current}
    result = list(current)
    for old in previous:
        if old.kind is not SignalKind.CRASH_LOOP_BACK_OFF:
            continue
        slot = (old.init_container, old.container or "")
        status = statuses.get(slot)
        replacement = by_container.get((old.init_container, old.container))
        if status is None or status.get("ready") is True:
            continue
        if replacement is not None and replacement.kind is not SignalKind.CONTAINER_FAILED:
            continue
        last = _map(_map(status.get("state")).get("terminated")) or _map(
            _map(status.get("lastState")).get("terminated")
        )
        carried = dataclasses.replace(
            old,
            restart_count=_int(status.get("restartCount")) or old.restart_count,
            exit_code=_int(last.get("exitCode")) if last else old.exit_code,
            termination_reason=(_str(last.get("reason")) or None) if last else old.termination_reason,
        )
        if replacement is not None:
            result.remove(replacement)
        result.append(carried)
    return result


# ---------------------------------------------------------------------------------------------
# Presentation


def sort_key(signal: Signal) -> tuple[bool, int, str, str, bool, str, str, str]:
    """Fatal first, then by severity, object, init containers before containers, then text."""
    return (
        not signal.fatal,
        SEVERITY[signal.kind],
        signal.object_kind,
        signal.object_name,
        not signal.init_container,
        signal.container or "",
        signal.reason,
        signal.message,
    )


def describe(signal: Signal, *, limit: int = 600, secrets: Iterable[str] = ()) -> str:
    """One human-readable line, e.g. ``ImagePullBackOff: pod web-7d9f container web: Back-off …``.

    The texts are redacted of ``secrets`` before they are joined, and the line before it is cut.
    """
    secret_list = list(secrets)
    if secret_list:
        signal = dataclasses.replace(
            signal, message=redact(signal.message, secret_list), detail=redact(signal.detail, secret_list)
        )
    subject = (
        f"pod {signal.object_name}"
        if signal.object_kind == "Pod"
        else (f"{signal.object_kind.lower() or 'object'} {signal.object_name}")
    )
    if signal.container:
        subject += f" {'initContainer' if signal.init_container else 'container'} {signal.container}"
    notes = []
    if signal.kind is SignalKind.CRASH_LOOP_BACK_OFF:
        if signal.restart_count:
            notes.append(f"restarts: {signal.restart_count}")
        if signal.exit_code is not None:
            notes.append(f"last exit code {signal.exit_code}")
        if signal.termination_reason:
            notes.append(signal.termination_reason)
    elif signal.kind is SignalKind.CONTAINER_FAILED:
        notes.append(f"exit code {signal.exit_code}")
        if signal.restart_count:
            notes.append(f"restarts: {signal.restart_count}")
    elif signal.kind in (SignalKind.ERR_IMAGE_PULL, SignalKind.IMAGE_PULL_BACK_OFF):
        if signal.occurrences > 1:
            notes.append(f"failed pulls: {signal.occurrences}")
    elif signal.occurrences > 1:
        notes.append(f"seen {signal.occurrences} times")
    text = signal.message or "(no message)"
    if signal.detail and signal.detail not in text:
        text += f"; last error: {signal.detail}"
    if notes:
        text += f" ({', '.join(notes)})"
    line = redact(f"{signal.reason or signal.kind.value}: {subject}: {text}", secret_list)
    return truncate_middle(line, limit, separator=" ")


# ---------------------------------------------------------------------------------------------
# Helpers for loosely typed API objects


def get_path(data: Mapping[str, Any], *path: str) -> Any:
    """``data[path[0]][path[1]]...`` of a loosely typed API object, or ``None`` where a level is missing."""
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def clean_text(value: Any, secrets: Iterable[str] = ()) -> str:
    """A cluster text as one redacted line: redact, collapse whitespace, then redact again.

    Collapsing first would hide a secret that contains whitespace (a key's lines, a passphrase)
    from the search; redacting again catches a secret the cluster wrote with other whitespace.
    """
    text = _str(value)
    if not text:
        return ""
    secret_list = list(secrets)
    collapsed = _WHITESPACE.sub(" ", redact(text, secret_list)).strip()
    collapsed_forms = [c for s in secret_list if (c := _WHITESPACE.sub(" ", s).strip()) and c != s]
    return redact(collapsed, [*secret_list, *collapsed_forms])


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _container_of(involved: Mapping[str, Any]) -> tuple[str | None, bool]:
    match = _FIELD_PATH.match(_str(involved.get("fieldPath")))
    if match is None:
        return None, False
    return match["name"], match["section"] == "initContainers"


def _event_key(event: Mapping[str, Any]) -> str:
    metadata = _map(event.get("metadata"))
    return _str(metadata.get("uid")) or _str(metadata.get("name")) or repr(sorted(event.items(), key=str))


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        _map(c).get("type") == "Ready" and _map(c).get("status") == "True"
        for c in _list(get_path(pod, "status", "conditions"))
    )


def _pod_scheduled(pod: Mapping[str, Any]) -> bool:
    if get_path(pod, "spec", "nodeName"):
        return True
    return any(
        _map(c).get("type") == "PodScheduled" and _map(c).get("status") == "True"
        for c in _list(get_path(pod, "status", "conditions"))
    )


def _containers_started(pod: Mapping[str, Any]) -> bool:
    for key in ("initContainerStatuses", "containerStatuses"):
        for status in _list(get_path(pod, "status", key)):
            state = _map(_map(status).get("state"))
            if state.get("running") or state.get("terminated"):
                return True
    return False


def _min_optional(first: float, second: float | None) -> float:
    return first if second is None else min(first, second)
