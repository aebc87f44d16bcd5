"""Classifying Warning events into signals, and reading an event's count, time and subject."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from communication_operator.workloads.signals.fields import as_int, as_map, as_str, get_path, parse_time
from communication_operator.workloads.signals.model import Signal, SignalKind
from communication_operator.workloads.signals.text import clean_text

#: Pod event reasons whose content the pod status already carries.
_POD_STATUS_ECHO_REASONS = frozenset(
    {"Failed", "BackOff", "InspectFailed", "ErrImageNeverPull", "Evicted", "FailedSync"}
)


_FIELD_PATH = re.compile(
    r"^spec\.(?P<section>containers|initContainers|ephemeralContainers)\{(?P<name>[^}]*)\}"
)

_VOLUME_EVENT_REASONS = frozenset(
    {"FailedMount", "FailedAttachVolume", "FailedMapVolume", "ProvisioningFailed", "FailedBinding"}
)


def classify_event(event: Mapping[str, Any], secrets: Iterable[str] = ()) -> Signal | None:
    """The signal a Warning event stands for, or ``None`` (Normal events, echoes of the pod status)."""
    if event.get("type") != "Warning":
        return None
    involved = as_map(event.get("involvedObject") or event.get("regarding"))
    object_kind = as_str(involved.get("kind"))
    object_name = as_str(involved.get("name"))
    reason = as_str(event.get("reason"))
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
    involved = as_map(event.get("involvedObject") or event.get("regarding"))
    message = clean_text(event.get("message") or event.get("note"), secrets)
    if involved.get("kind") != "Pod" or not message.startswith("Failed to pull image"):
        return None
    container, init = _container_of(involved)
    return (as_str(involved.get("name")), container or "", init, event_count(event), message)


def event_count(event: Mapping[str, Any]) -> int:
    """How often the event occurred (``count``, or ``series.count`` for events.k8s.io events)."""
    count = as_int(event.get("count")) or 1
    series = as_int(as_map(event.get("series")).get("count")) or 0
    return max(count, series)


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """When the event was last observed (falling back through the fields the API may leave empty)."""
    for value in (
        as_map(event.get("series")).get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        get_path(event, "metadata", "creationTimestamp"),
    ):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return None


def event_concerns_release(event: Mapping[str, Any], release: str, known_pods: Collection[str] = ()) -> bool:
    """True if the event is about one of the release's objects (named after it, or a known pod)."""
    name = as_str(as_map(event.get("involvedObject") or event.get("regarding")).get("name"))
    return name == release or name.startswith(f"{release}-") or name in known_pods


def _container_of(involved: Mapping[str, Any]) -> tuple[str | None, bool]:
    match = _FIELD_PATH.match(as_str(involved.get("fieldPath")))
    if match is None:
        return None, False
    return match["name"], match["section"] == "initContainers"
