"""What the controller recorded per deploy: how each deploy was dispatched and which reports it got.

A *deploy* is one deploy action of the user (``POST /admin/workloads/{id}/deploy``). The controller
sends it as ``WorkloadDeployedAsync`` (or queues it while no operator has the pool) and sends it again
with ``isReconciliation: true`` when a pool registers while the workload is still Pending. The wire
carries no deploy id, so a report belongs to the workload's latest deploy, as in the controller, whose
state is per workload. The record lets a test assert the delivery promises from outside: exactly one
final status per deploy, and no progress report after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Dispatch(StrEnum):
    SENT = "sent"  # pushed to the pool's registered connection(s) at once
    QUEUED = "queued"  # no connection had the pool; waits in the pool's queue
    FLUSHED = "flushed"  # the queued event, delivered when the pool registered
    RECONCILIATION = "reconciliation"  # re-sent with isReconciliation=true by RegisterPoolAsync


class ReportKind(StrEnum):
    PROGRESS = "progress"
    STATUS = "status"


@dataclass(frozen=True)
class DeployReport:
    kind: ReportKind
    time: float
    message: str | None
    success: bool | None = None  # statuses only

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind.value, "time": self.time, "message": self.message}
        if self.kind == ReportKind.STATUS:
            body["success"] = self.success
        return body

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DeployReport:
        return cls(ReportKind(raw["kind"]), float(raw["time"]), raw.get("message"), raw.get("success"))


@dataclass
class DeployRecord:
    number: int  # 1 for the workload's first deploy, then 2, 3, ...
    requested_at: float
    dispatches: list[tuple[Dispatch, float]] = field(default_factory=list)
    reports: list[DeployReport] = field(default_factory=list)

    def dispatched(self, how: Dispatch) -> None:
        self.dispatches.append((how, time.time()))

    def reported(self, report: DeployReport) -> None:
        self.reports.append(report)

    @property
    def final_statuses(self) -> int:
        return sum(1 for r in self.reports if r.kind == ReportKind.STATUS)

    @property
    def progress_after_final(self) -> int:
        """Progress reports that arrived after the deploy's first final status."""
        first_final = next((i for i, r in enumerate(self.reports) if r.kind == ReportKind.STATUS), None)
        if first_final is None:
            return 0
        return sum(1 for r in self.reports[first_final + 1 :] if r.kind == ReportKind.PROGRESS)

    def to_json(self) -> dict[str, Any]:
        """The saved form (also the admin view, which adds the two counts)."""
        return {
            "number": self.number,
            "requestedAt": self.requested_at,
            "dispatches": [{"how": how.value, "time": at} for how, at in self.dispatches],
            "reports": [r.to_json() for r in self.reports],
        }

    def to_view(self) -> dict[str, Any]:
        return {
            **self.to_json(),
            "finalStatuses": self.final_statuses,
            "progressAfterFinal": self.progress_after_final,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DeployRecord:
        return cls(
            number=int(raw["number"]),
            requested_at=float(raw["requestedAt"]),
            dispatches=[(Dispatch(d["how"]), float(d["time"])) for d in raw.get("dispatches", [])],
            reports=[DeployReport.from_json(r) for r in raw.get("reports", [])],
        )


@dataclass
class DeployLog:
    """The deploy records of one workload, oldest first."""

    records: list[DeployRecord] = field(default_factory=list)

    def start(self) -> DeployRecord:
        record = DeployRecord(number=len(self.records) + 1, requested_at=time.time())
        self.records.append(record)
        return record

    @property
    def latest(self) -> DeployRecord | None:
        return self.records[-1] if self.records else None

    def dispatched(self, how: Dispatch) -> None:
        if self.latest is not None:
            self.latest.dispatched(how)

    def progress(self, message: str | None) -> None:
        self._current().reported(DeployReport(ReportKind.PROGRESS, time.time(), message))

    def status(self, success: bool, message: str | None) -> None:
        self._current().reported(DeployReport(ReportKind.STATUS, time.time(), message, success))

    def _current(self) -> DeployRecord:
        # A report with no deploy on record (a state file from before records existed) gets one.
        return self.latest or self.start()
