"""Final statuses still on their way to the controller answer an identical re-dispatch (issue 13, item 5).

A deploy that finishes while the controller is away leaves its final status in the hub's outbox. On
reconnect the operator registers its pools before the queued reports go out (octo-spec §6.3), and the
controller re-dispatches every workload still ``Pending`` (``isReconciliation=true``, §1.5). Running
helm again for such a push would give the controller a second final status, a second helm revision
and, worse, progress reports after the final one.

:class:`UndeliveredStatuses` remembers, per workload, what its last final status answered (a deploy's
content, or the problems of a refused push) and the future :meth:`HubConnection.report` returned for
it. A push with the same content is answered by that status, with no helm run and no new report:

* while the status is still queued, whatever the push;
* once delivered, a re-dispatch (``isReconciliation``) on the same connection: the controller has
  the status. A user's identical redeploy runs, and from the next connection on a re-dispatch runs
  too (the controller may have lost the status in a restart). See :meth:`connection_opened`.

A status the controller refused answers nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from communication_operator.contracts import WorkloadDeployedDto

WorkloadKey = tuple[str, str]  # (tenantId, workloadRtId)


def workload_key(dto: WorkloadDeployedDto) -> WorkloadKey:
    return (dto.tenant_id, dto.workload_rt_id)


def deploy_content(dto: WorkloadDeployedDto) -> dict[str, Any]:
    """The workload spec; ``isReconciliation`` is how the controller marks a re-dispatch, not a change."""
    return dto.model_dump(exclude={"is_reconciliation"})


def refusal_content(problems: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """What a refused push's status answered: the same problems are refused with the same status."""
    return ("refused", problems)


def same_deploy(earlier: WorkloadDeployedDto | None, new: WorkloadDeployedDto) -> bool:
    return earlier is not None and deploy_content(earlier) == deploy_content(new)


@dataclass(eq=False)
class _Queued:
    content: object
    delivery: asyncio.Future[bool]


class UndeliveredStatuses:
    """Final statuses queued, or delivered on the current connection, per workload."""

    def __init__(self) -> None:
        self._queued: dict[WorkloadKey, _Queued] = {}

    def __len__(self) -> int:
        return len(self._queued)

    def remember(self, key: WorkloadKey, content: object, delivery: asyncio.Future[bool] | None) -> None:
        """The final status answering ``content`` was queued; ``delivery`` settles when it leaves the
        outbox."""
        if delivery is None or (delivery.done() and not _delivered(delivery)):
            self._queued.pop(key, None)
            return
        entry = _Queued(content, delivery)
        self._queued[key] = entry

        def settled(_: asyncio.Future[bool]) -> None:
            if not _delivered(delivery) and self._queued.get(key) is entry:
                del self._queued[key]  # refused by the controller: it answers nothing

        delivery.add_done_callback(settled)

    def answers(self, key: WorkloadKey, content: object, *, redispatch: bool) -> bool:
        """True when the remembered status answers a push of ``content`` (see the module docstring)."""
        entry = self._queued.get(key)
        if entry is None or entry.content != content:
            return False
        return not entry.delivery.done() or (redispatch and _delivered(entry.delivery))

    def answers_deploy(self, dto: WorkloadDeployedDto) -> bool:
        return self.answers(workload_key(dto), deploy_content(dto), redispatch=dto.is_reconciliation)

    def forget(self, tenant_id: str, workload_rt_id: str) -> None:
        """A different deploy or an undeploy of the workload: the remembered status answers nothing now."""
        self._queued.pop((tenant_id, workload_rt_id), None)

    def connection_opened(self) -> None:
        """A new connection: statuses delivered on an earlier one answer nothing any more."""
        for key in [key for key, entry in self._queued.items() if entry.delivery.done()]:
            del self._queued[key]


def _delivered(delivery: asyncio.Future[bool]) -> bool:
    return delivery.done() and not delivery.cancelled() and delivery.exception() is None and delivery.result()
