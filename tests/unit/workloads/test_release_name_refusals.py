"""A tenant id that sanitises to nothing is refused like a blank one: no helm run, one failed status."""

from __future__ import annotations

import pytest

from tests.unit.workloads.test_service import harness  # noqa: F401 - fixture used by name

from .doubles import Harness


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tenant_id": "***"}, "Invalid workload: tenantId '***' has no letters or digits"),
        ({"tenant_id": "  "}, "Invalid workload: tenantId is blank"),
        ({"workload_rt_id": "..."}, "Invalid workload: workloadRtId '...' has no letters or digits"),
    ],
)
async def test_a_name_component_without_letters_or_digits_fails_once_without_helm(
    harness: Harness,  # noqa: F811
    fields: dict[str, str],
    expected: str,
) -> None:
    await harness.deploy(**fields)
    await harness.settle()

    (status,) = harness.hub.statuses()
    assert status.success is False
    assert status.status_message is not None
    assert status.status_message.startswith(expected)
    assert status.status_message.endswith("cannot name the helm release")
    assert harness.fake.calls() == []
