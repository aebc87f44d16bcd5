"""Why a workload push was not carried out: one base, :class:`WorkloadError`, and one subclass per meaning.

The message of each is the text the controller sees, before redaction and bounding (the report step
does both). The deploy pipeline (:mod:`.deploy`) has one ``except`` per meaning: refused input, a
failed step, and a bug.
"""

from __future__ import annotations

from typing import Final

INVALID_WORKLOAD: Final = "Invalid workload: {problem}"


class WorkloadError(Exception):
    """A workload push the operator could not carry out; the message is for the controller."""


class InvalidWorkload(WorkloadError):
    """The push itself is wrong (ids, repository URL, chart version, values): no helm runs."""

    def __init__(self, problem: object) -> None:
        super().__init__(INVALID_WORKLOAD.format(problem=problem))


class DeployFailed(WorkloadError):
    """A deploy step failed (helm, the cluster, a Secret); the message says which and why."""


class StoppedEarly(DeployFailed):
    """The watched upgrade was stopped before helm's timeout: the watcher called a signal fatal."""
