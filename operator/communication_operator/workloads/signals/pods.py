"""Classifying one pod's status into signals: containers, init containers, scheduling, a failed phase."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from communication_operator.workloads.signals.fields import as_int, as_list, as_map, as_str, get_path
from communication_operator.workloads.signals.model import Signal, SignalKind
from communication_operator.workloads.signals.text import clean_text

#: Waiting reasons that are normal progress, not problems.
BENIGN_WAITING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})

_WAITING_KINDS: Mapping[str, SignalKind] = {
    "InvalidImageName": SignalKind.INVALID_IMAGE_NAME,
    "ErrImagePull": SignalKind.ERR_IMAGE_PULL,
    "ImagePullBackOff": SignalKind.IMAGE_PULL_BACK_OFF,
    "CrashLoopBackOff": SignalKind.CRASH_LOOP_BACK_OFF,
    "CreateContainerConfigError": SignalKind.CREATE_CONTAINER_CONFIG_ERROR,
    "CreateContainerError": SignalKind.CREATE_CONTAINER_ERROR,
    "RunContainerError": SignalKind.RUN_CONTAINER_ERROR,
}


def classify_pod(pod: Mapping[str, Any], secrets: Iterable[str] = ()) -> list[Signal]:
    """Signals from one pod's status (no events): containers, init containers, scheduling, phase.

    Messages are redacted of ``secrets`` before their whitespace is collapsed (:func:`clean_text`).
    """
    secret_list = list(secrets)
    name = as_str(get_path(pod, "metadata", "name"))
    status = as_map(pod.get("status"))
    if get_path(pod, "metadata", "deletionTimestamp") is not None:
        return []  # shutting down (an old replica during a rollout): its exit codes are expected
    signals: list[Signal] = []

    phase_reason = as_str(status.get("reason"))
    if as_str(status.get("phase")) == "Failed":
        message = clean_text(status.get("message"), secret_list)
        if phase_reason == "Evicted":
            # The containers were killed by the eviction; their exit codes add nothing.
            return [Signal(SignalKind.EVICTED, "Pod", name, "Evicted", message)]
        if phase_reason:  # refused by the kubelet (OutOfcpu, NodeAffinity…) or DeadlineExceeded
            signals.append(Signal(SignalKind.POD_FAILED, "Pod", name, phase_reason, message))

    for condition in as_list(status.get("conditions")):
        condition = as_map(condition)
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
        for container_status in as_list(status.get(key)):
            signal = _classify_container(name, as_map(container_status), secret_list, init=init)
            if signal is not None:
                signals.append(signal)
    return signals


def _classify_container(
    pod: str, status: Mapping[str, Any], secrets: list[str], *, init: bool
) -> Signal | None:
    container = as_str(status.get("name"))
    restarts = as_int(status.get("restartCount")) or 0
    state = as_map(status.get("state"))
    last = as_map(as_map(status.get("lastState")).get("terminated"))
    waiting = as_map(state.get("waiting"))
    terminated = as_map(state.get("terminated"))

    if waiting:
        reason = as_str(waiting.get("reason"))
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
            exit_code=as_int(last.get("exitCode")) if last else None,
            termination_reason=(as_str(last.get("reason")) or None) if last else None,
            restart_count=restarts,
        )
    if terminated:
        exit_code = as_int(terminated.get("exitCode"))
        if not exit_code:
            return None
        reason = as_str(terminated.get("reason")) or "Error"
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
