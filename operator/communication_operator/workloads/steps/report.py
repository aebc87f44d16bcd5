"""Step *report*: progress and the final status to the controller, redacted and bounded, and the
success message naming the deployed revision (octo-spec §4.5)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from communication_operator.contracts import (
    ServerMethod,
    WorkloadDeployedDto,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
)
from communication_operator.redaction import redact, truncate_middle
from communication_operator.workloads.context import release_or_none, workload_context
from communication_operator.workloads.delivery import UndeliveredStatuses, deploy_content, workload_key
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.ports import Delivery, HelmPort, ReportPort

log = logging.getLogger(__name__)

DEPLOYED: Final = "Deployed {chart} {version}"
DEPLOYED_REVISION: Final = "Deployed revision {revision} of {chart} {version}"
OPERATOR_FAILURE: Final = "Deploy failed in the operator: {error_type}: {error}"
LOG_EXCERPT_LIMIT: Final = 600


class Reporter:
    """Sends a deploy's progress and final status; a final status is remembered until delivered
    (:class:`~..delivery.UndeliveredStatuses`) so that a re-dispatch can be answered by it."""

    def __init__(self, hub: ReportPort, status_limit: int, undelivered: UndeliveredStatuses) -> None:
        self._hub = hub
        self._limit = status_limit
        self._undelivered = undelivered

    async def progress(self, dto: WorkloadDeployedDto, text: str, secrets: Iterable[str]) -> Delivery:
        """Queue a progress report; the result settles when the controller has it (see hub.report)."""
        message = truncate_middle(redact(text, secrets), self._limit)
        log.info(
            "workload %s progress: %s",
            dto.workload_rt_id,
            log_excerpt(message, secrets),
            extra=workload_context(dto, release_or_none(dto)),
        )
        return await self._hub.report(
            ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS,
            WorkloadDeploymentProgressDto(
                tenant_id=dto.tenant_id,
                workload_name=dto.workload_name,
                workload_rt_id=dto.workload_rt_id,
                message=message,
            ),
        )

    async def status(
        self,
        dto: WorkloadDeployedDto,
        success: bool,
        text: str,
        secrets: Iterable[str],
        release: str | None = None,
    ) -> None:
        message = truncate_middle(redact(text, secrets), self._limit)
        if not success:
            log.warning(
                "deploy of workload %s (%s) failed: %s",
                dto.workload_rt_id,
                dto.workload_name,
                log_excerpt(message, secrets),
                extra=workload_context(dto, release),
            )
        delivery = await self._hub.report(
            ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS,
            WorkloadDeploymentStatusDto(
                tenant_id=dto.tenant_id,
                workload_name=dto.workload_name,
                workload_rt_id=dto.workload_rt_id,
                success=success,
                status_message=message,
            ),
        )
        self._undelivered.remember(workload_key(dto), deploy_content(dto), delivery)


async def success_message(
    helm: HelmPort, release: str, namespace: str, chart_name: str, version: str | None
) -> str:
    """The status text of a finished deploy: the revision helm recorded, or the chart when unreadable."""
    try:
        history = await helm.history(release, namespace, max_revisions=1)
    except (HelmError, ValueError) as exc:  # the deploy succeeded; only the message is plainer
        log.warning("release %s: cannot read the deployed revision (%s)", release, exc)
        history = []
    if not history:
        return DEPLOYED.format(chart=chart_name, version=version or "").rstrip()
    latest = history[-1]
    chart = str(latest.get("chart", ""))
    prefix = f"{chart_name}-"
    installed = chart[len(prefix) :] if chart.startswith(prefix) else (version or chart)
    return DEPLOYED_REVISION.format(
        revision=latest.get("revision"), chart=chart_name, version=installed
    ).rstrip()


def operator_failure(exc: Exception) -> str:
    """The status text of a deploy that a bug in the operator stopped."""
    return OPERATOR_FAILURE.format(error_type=type(exc).__name__, error=exc)


def log_excerpt(message: str, secrets: Iterable[str]) -> str:
    """A report as one bounded log line; joined and redacted again before it is cut."""
    return truncate_middle(
        redact(" | ".join(message.splitlines()), secrets), LOG_EXCERPT_LIMIT, separator=" "
    )
