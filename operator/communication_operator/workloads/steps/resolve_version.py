"""Step *resolve version*: which chart version to install (octo-spec §4.8): the pushed one, else for a
reconciliation the installed one, else the newest (``None``)."""

from __future__ import annotations

import logging
from typing import Final

from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.ports import HelmPort

log = logging.getLogger(__name__)

UNREADABLE_LOG: Final = "release %s: cannot read the installed chart version (%s); using the newest"
KEPT_LOG: Final = "release %s: reconciliation keeps the installed chart version %s"


async def resolve_version(
    helm: HelmPort, dto: WorkloadDeployedDto, release: str, namespace: str, version: str | None
) -> str | None:
    """A reconciliation without a pinned version keeps the installed chart version (best effort)."""
    if version is not None or not dto.is_reconciliation:
        return version
    try:
        releases = await helm.list_releases(namespace, name_filter=f"^{release}$")
    except (HelmError, ValueError) as exc:  # best effort (ValueError: unreadable JSON); deploy goes on
        log.warning(UNREADABLE_LOG, release, exc)
        return None
    prefix = f"{dto.chart_name}-"
    for entry in releases:
        chart = str(entry.get("chart", ""))
        if entry.get("name") == release and chart.startswith(prefix) and len(chart) > len(prefix):
            installed = chart[len(prefix) :]
            log.info(KEPT_LOG, release, installed)
            return installed
    return None
