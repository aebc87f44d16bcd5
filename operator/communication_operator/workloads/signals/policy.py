"""The fail-fast policy: whether a signal that has persisted for so long should cancel helm now."""

from __future__ import annotations

from dataclasses import dataclass

from communication_operator.workloads.signals.model import Signal, SignalKind


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


def _min_optional(first: float, second: float | None) -> float:
    return first if second is None else min(first, second)
