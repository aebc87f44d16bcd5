"""Workload pushes that fail validation: answered once, never deployed, never silent.

The contracts layer refuses the push (:class:`~communication_operator.contracts.InvalidPush`, with
the ids it could read); this front decides what the controller hears. A refused deploy whose tenant
and workload ids can be read gets one failed ``ReportWorkloadDeploymentStatusAsync`` naming the
problem, so the workload leaves Pending for Error with a reason. The contract has no undeploy status,
so a refused undeploy is logged once with its context. Either way one log line per push.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from communication_operator.contracts import (
    InvalidPush,
    PushIds,
    ServerMethod,
    WorkloadDeploymentStatusDto,
)
from communication_operator.contracts.validation import show
from communication_operator.logs import log_context
from communication_operator.redaction import redact_and_bound
from communication_operator.workloads.errors import INVALID_WORKLOAD
from communication_operator.workloads.ports import Delivery, ReportPort

log = logging.getLogger(__name__)

_CONTEXT_VALUE_LIMIT = 64


#: How a refused deploy's status is sent: the workload service orders it after any running deploy of the
#: workload and remembers it like a deploy's final status (exactly once, review finding 8).
RefusalRoute = Callable[
    [tuple[str, str], tuple[str, ...], Callable[[], Awaitable[Delivery]]], Awaitable[None]
]


class WorkloadPushRefusals:
    """The ``on_invalid`` handlers of the workload pushes."""

    def __init__(self, hub: ReportPort, route: RefusalRoute | None = None) -> None:
        self._hub = hub
        self._route = route

    async def deploy_refused(self, refused: InvalidPush) -> None:
        ids = refused.ids
        problems = "; ".join(refused.problems)
        if not ids.readable or ids.tenant_id is None or ids.workload_rt_id is None:
            log.error(
                "refusing a workload deploy: %s; no status can be reported "
                "(tenantId and workloadRtId are not readable)",
                problems,
                extra=_context(ids),
            )
            return
        log.error(
            "refusing deploy of workload %s: %s; reporting it failed",
            show(ids.workload_rt_id),
            problems,
            extra=_context(ids),
        )
        status = WorkloadDeploymentStatusDto(
            tenant_id=ids.tenant_id,
            workload_name=ids.workload_name or "",
            workload_rt_id=ids.workload_rt_id,
            success=False,
            status_message=INVALID_WORKLOAD.format(problem=problems),
        )

        async def send() -> Delivery:
            return await self._hub.report(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, status)

        if self._route is None:
            await send()
        else:
            await self._route((ids.tenant_id, ids.workload_rt_id), refused.problems, send)

    async def undeploy_refused(self, refused: InvalidPush) -> None:
        workload = show(refused.ids.workload_rt_id) if refused.ids.workload_rt_id is not None else "-"
        log.error(
            "refusing undeploy of workload %s: %s; nothing is uninstalled (the contract has no undeploy "
            "status to report)",
            workload,
            "; ".join(refused.problems),
            extra=_context(refused.ids),
        )


def _context(ids: PushIds) -> dict[str, str]:
    def bounded(value: str | None) -> str | None:
        return (
            redact_and_bound(value, _CONTEXT_VALUE_LIMIT, keep_end=False, marker="")
            if value is not None
            else None
        )

    return log_context(
        tenant=bounded(ids.tenant_id), pool=bounded(ids.pool_rt_id), workload=bounded(ids.workload_rt_id)
    )
