"""Reverse sync (``ReportDeployedStateAsync``): what central mode tells a controller that forgot its state.

Beyond upstream (which always sends empty ``workloadRtIds``), the report can name the workloads that
run healthily in each pool. Their source is the :class:`DeployedWorkloadsSource` seam: the workload
deployer provides one that reads helm release labels; until it is wired in, :class:`NoDeployedWorkloads`
reports pools only, exactly like upstream.

Reports are chunked so that no hub message exceeds the server's receive limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from communication_operator.contracts import OperatorDeployedPoolReportDto
from communication_operator.pools.model import PoolKey

# Room for the invocation envelope: {"type":1,"invocationId":"...","target":"ReportDeployedStateAsync",
# "arguments":[[...]]} plus the record separator; generous on purpose.
ENVELOPE_BYTES = 256


class DeployedWorkloadsSource(Protocol):
    """Which workloads run (healthily) in which pool, by ``(tenantId, poolRtId)``."""

    async def workload_rt_ids_by_pool(self) -> Mapping[tuple[str, str], Sequence[str]]: ...


class NoDeployedWorkloads:
    """The default source: no workload knowledge, so reports carry pools only (upstream behaviour)."""

    async def workload_rt_ids_by_pool(self) -> Mapping[tuple[str, str], Sequence[str]]:
        return {}


def build_reports(
    keys: Iterable[PoolKey], workloads: Mapping[tuple[str, str], Sequence[str]]
) -> list[OperatorDeployedPoolReportDto]:
    """One report per pool; ``poolName`` stays empty (the controller looks the name up itself)."""
    return [
        OperatorDeployedPoolReportDto(
            tenant_id=key.tenant_id,
            pool_rt_id=key.pool_rt_id,
            pool_name="",
            workload_rt_ids=sorted(workloads.get((key.tenant_id, key.pool_rt_id), ())),
        )
        for key in sorted(keys)
    ]


def _size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def chunk_reports(
    reports: Sequence[OperatorDeployedPoolReportDto], max_message_bytes: int
) -> list[list[OperatorDeployedPoolReportDto]]:
    """Split into lists whose invocation stays under ``max_message_bytes``.

    A pool whose workload list alone is too big is sent as several reports for the same pool, each with
    a share of the workload ids: the controller handles each listed workload on its own, so the split is
    harmless.
    """
    budget = max_message_bytes - ENVELOPE_BYTES
    if budget <= 0:
        raise ValueError(f"max_message_bytes={max_message_bytes} leaves no room for a report")
    chunks: list[list[OperatorDeployedPoolReportDto]] = []
    current: list[OperatorDeployedPoolReportDto] = []
    used = 2  # the enclosing []
    for report in _split_oversized(reports, budget):
        size = _size(report.to_wire()) + 1  # and a comma
        if current and used + size > budget:
            chunks.append(current)
            current, used = [], 2
        current.append(report)
        used += size
    if current:
        chunks.append(current)
    return chunks


def _split_oversized(
    reports: Sequence[OperatorDeployedPoolReportDto], budget: int
) -> Iterable[OperatorDeployedPoolReportDto]:
    for report in reports:
        if _size(report.to_wire()) + 3 <= budget:
            yield report
            continue
        base = _size(report.model_copy(update={"workload_rt_ids": []}).to_wire()) + 3
        if base > budget:
            raise ValueError(
                f"a report for pool {report.tenant_id}/{report.pool_rt_id} cannot fit {budget} bytes"
            )
        share: list[str] = []
        used = base
        for rt_id in report.workload_rt_ids:
            cost = _size(rt_id) + 1
            if share and used + cost > budget:
                yield report.model_copy(update={"workload_rt_ids": share})
                share, used = [], base
            share.append(rt_id)
            used += cost
        yield report.model_copy(update={"workload_rt_ids": share})
