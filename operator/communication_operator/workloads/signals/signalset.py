"""The current signals of one deploy across a watch: per-pod state, clearing rules, persistence clocks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from communication_operator.workloads.signals.events import (
    classify_event,
    event_time,
    pull_failure_from_event,
)
from communication_operator.workloads.signals.fields import (
    as_int,
    as_list,
    as_map,
    as_str,
    get_path,
    parse_time,
)
from communication_operator.workloads.signals.model import Signal, SignalKind, sort_key
from communication_operator.workloads.signals.pods import classify_pod
from communication_operator.workloads.signals.policy import FailFastPolicy, is_fatal


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
        name = as_str(get_path(pod, "metadata", "name"))
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
                (as_str(as_map(ref).get("kind")), as_str(as_map(ref).get("name")))
                for ref in as_list(get_path(pod, "metadata", "ownerReferences"))
            ),
            created=parse_time(get_path(pod, "metadata", "creationTimestamp")),
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
        (init, as_str(as_map(s).get("name"))): as_map(s)
        for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses"))
        for s in as_list(get_path(pod, "status", key))
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
        last = as_map(as_map(status.get("state")).get("terminated")) or as_map(
            as_map(status.get("lastState")).get("terminated")
        )
        carried = dataclasses.replace(
            old,
            restart_count=as_int(status.get("restartCount")) or old.restart_count,
            exit_code=as_int(last.get("exitCode")) if last else old.exit_code,
            termination_reason=(as_str(last.get("reason")) or None) if last else old.termination_reason,
        )
        if replacement is not None:
            result.remove(replacement)
        result.append(carried)
    return result


def _event_key(event: Mapping[str, Any]) -> str:
    metadata = as_map(event.get("metadata"))
    return as_str(metadata.get("uid")) or as_str(metadata.get("name")) or repr(sorted(event.items(), key=str))


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        as_map(c).get("type") == "Ready" and as_map(c).get("status") == "True"
        for c in as_list(get_path(pod, "status", "conditions"))
    )


def _pod_scheduled(pod: Mapping[str, Any]) -> bool:
    if get_path(pod, "spec", "nodeName"):
        return True
    return any(
        as_map(c).get("type") == "PodScheduled" and as_map(c).get("status") == "True"
        for c in as_list(get_path(pod, "status", "conditions"))
    )


def _containers_started(pod: Mapping[str, Any]) -> bool:
    for key in ("initContainerStatuses", "containerStatuses"):
        for status in as_list(get_path(pod, "status", key)):
            state = as_map(as_map(status).get("state"))
            if state.get("running") or state.get("terminated"):
                return True
    return False
