"""Final statuses still on their way to the controller answer an identical re-dispatch (issue 13, item 5).

A deploy that finishes while the controller is away leaves its final status in the hub's outbox. On
reconnect the operator registers its pools before the queued reports go out (octo-spec §6.3), and the
controller re-dispatches every workload still ``Pending`` (``isReconciliation=true``, §1.5). Running
helm again for such a push would give the controller a second final status, a second helm revision
and, worse, progress reports after the final one.

:class:`UndeliveredStatuses` remembers, per workload, the deploy whose final status is queued and the
future :meth:`HubConnection.report` returned for it. A push with the same content, arriving while that
future is unsettled, is answered by the queued status: no helm run, no new report. Once the status
has left the outbox (delivered, or refused) the entry is gone, so a later re-dispatch (for example
after the controller lost the status in a restart) runs as usual.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from communication_operator.contracts import WorkloadDeployedDto

WorkloadKey = tuple[str, str]  # (tenantId, workloadRtId)


def workload_key(dto: WorkloadDeployedDto) -> WorkloadKey:
    return (dto.tenant_id, dto.workload_rt_id)


def same_deploy(earlier: WorkloadDeployedDto | None, new: WorkloadDeployedDto) -> bool:
    """Same workload spec; ``isReconciliation`` is how the controller marks a re-dispatch, not a change."""
    if earlier is None:
        return False
    ignored = {"is_reconciliation"}
    return earlier.model_dump(exclude=ignored) == new.model_dump(exclude=ignored)


@dataclass(eq=False)
class _Queued:
    dto: WorkloadDeployedDto
    delivery: asyncio.Future[bool]


class UndeliveredStatuses:
    """Deploys whose final status is queued, not yet taken (or refused) by the controller."""

    def __init__(self) -> None:
        self._queued: dict[WorkloadKey, _Queued] = {}

    def __len__(self) -> int:
        return len(self._queued)

    def remember(self, dto: WorkloadDeployedDto, delivery: asyncio.Future[bool] | None) -> None:
        """``dto``'s final status was queued; ``delivery`` settles when it leaves the outbox."""
        key = workload_key(dto)
        if delivery is None or delivery.done():
            self._queued.pop(key, None)
            return
        entry = _Queued(dto, delivery)
        self._queued[key] = entry

        def settled(_: asyncio.Future[bool]) -> None:
            if self._queued.get(key) is entry:
                del self._queued[key]

        delivery.add_done_callback(settled)

    def answers(self, dto: WorkloadDeployedDto) -> bool:
        """True when a queued final status of an identical deploy answers this push."""
        entry = self._queued.get(workload_key(dto))
        return entry is not None and not entry.delivery.done() and same_deploy(entry.dto, dto)

    def forget(self, tenant_id: str, workload_rt_id: str) -> None:
        """A different deploy or an undeploy of the workload: the queued status answers nothing now."""
        self._queued.pop((tenant_id, workload_rt_id), None)
