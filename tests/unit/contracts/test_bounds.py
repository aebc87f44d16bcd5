"""Outgoing reports fit the message limit: ids intact, names and texts shortened, everything encodable."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from communication_operator.contracts import (
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
)
from communication_operator.contracts.bounds import (
    DISPLAY_NAME_LIMIT,
    encoded_size,
    fit_arguments,
)

TENANT = "acme"
WORKLOAD = "65f0c0ffee0000000000bbbb"
BUDGET = 32 * 1024 - 100


def wire_bytes(*arguments: object) -> int:
    wire = [a.to_wire() if hasattr(a, "to_wire") else a for a in arguments]  # type: ignore[attr-defined]
    return len(json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def test_a_report_that_fits_is_left_alone() -> None:
    status = WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id=WORKLOAD, workload_name="web")
    fitted = fit_arguments([status], BUDGET)
    assert fitted.arguments == (status,)
    assert fitted.arguments[0] is status
    assert fitted.shortened == ()


def test_a_megabyte_workload_name_is_cut_and_the_message_kept() -> None:
    status = WorkloadDeploymentStatusDto(
        tenant_id=TENANT,
        workload_rt_id=WORKLOAD,
        workload_name="n" * 1_000_000,
        success=False,
        status_message="helm failed: chart not found",
    )
    fitted = fit_arguments([status], BUDGET)
    (cut,) = fitted.arguments
    assert fitted.shortened == ("workloadName",)
    assert wire_bytes(cut) <= BUDGET
    assert cut.tenant_id == TENANT
    assert cut.workload_rt_id == WORKLOAD
    assert cut.status_message == "helm failed: chart not found"
    assert "characters omitted" in cut.workload_name
    assert len(cut.workload_name) <= DISPLAY_NAME_LIMIT + 10


def test_a_long_message_is_cut_in_the_middle_keeping_both_ends() -> None:
    text = "START " + '\x01"é' * 20_000 + " END"  # control characters and quotes grow in JSON
    progress = WorkloadDeploymentProgressDto(tenant_id=TENANT, workload_rt_id=WORKLOAD, message=text)
    (cut,) = fit_arguments([progress], BUDGET).arguments
    assert wire_bytes(cut) <= BUDGET
    assert wire_bytes(cut) > BUDGET - 100  # as much as fits is kept
    assert cut.message.startswith("START ")
    assert cut.message.endswith(" END")


def test_lone_surrogates_are_replaced_so_the_report_can_be_encoded() -> None:
    status = WorkloadDeploymentStatusDto(tenant_id=TENANT, workload_rt_id=WORKLOAD, workload_name="a\ud800b")
    with pytest.raises(UnicodeEncodeError):
        json.dumps(status.to_wire(), ensure_ascii=False).encode("utf-8")
    (clean,) = fit_arguments([status], BUDGET).arguments
    assert clean.workload_name == "a\ufffdb"
    assert encoded_size([clean]) == wire_bytes(clean)


def test_ids_are_never_cut() -> None:
    status = WorkloadDeploymentStatusDto(tenant_id="t" * 40_000, workload_rt_id=WORKLOAD, workload_name="web")
    fitted = fit_arguments([status], BUDGET)
    assert fitted.arguments[0].tenant_id == "t" * 40_000
    assert fitted.size > BUDGET  # the hub drops it as too large


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(max_size=3000),
    message=st.text(max_size=12_000),
    budget=st.integers(min_value=400, max_value=20_000),
)
def test_whatever_the_text_the_result_fits(name: str, message: str, budget: int) -> None:
    status = WorkloadDeploymentStatusDto(
        tenant_id=TENANT, workload_rt_id=WORKLOAD, workload_name=name, status_message=message
    )
    fitted = fit_arguments([status], budget)
    (cut,) = fitted.arguments
    assert fitted.size == encoded_size([cut])
    assert fitted.size <= budget
    assert cut.workload_rt_id == WORKLOAD
