"""The signal: one problem with one object as the cluster reports it, its kinds and display order."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

#: Image pull errors that waiting will not fix (unlike a registry hiccup or rate limit).
_HARD_PULL_ERROR = re.compile(
    r"not found|manifest unknown|unauthorized|authentication required|access denied|"
    r"pull access denied|denied: |forbidden|repository does not exist|invalid reference format|"
    r"no such host",
    re.IGNORECASE,
)


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
