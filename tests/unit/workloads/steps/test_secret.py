"""Step Secret: applied (or deleted when empty) with what it held before kept; restored without raising."""

from __future__ import annotations

import logging

import pytest

from communication_operator.contracts import ValueOverrideDto
from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.secrets import SecretError, SecretSnapshot
from communication_operator.workloads.steps.secret import apply_secret, restore_secret
from communication_operator.workloads.values import OperatorContext, render_values

from ..doubles import RELEASE, MemorySecrets, dto

NAME = f"{RELEASE}-octo-secrets"
SECRET_PUSH = dto(values=[ValueOverrideDto(path="db.password", value="pw-0123456789", is_secret=True)])


async def test_the_secret_is_applied_and_its_previous_content_returned() -> None:
    store = MemorySecrets()
    store.secrets[("octo", NAME)] = {"data": {"old": "x"}, "labels": {}}
    rendered = render_values(SECRET_PUSH, OperatorContext(pool_namespace="octo"))

    before = await apply_secret(store, "octo", SECRET_PUSH, rendered)

    assert before == SecretSnapshot(data={"old": "x"}, labels={})
    assert "pw-0123456789" in store.secrets[("octo", NAME)]["data"].values()
    assert store.secrets[("octo", NAME)]["workload"] == "Mesh Adapter"


async def test_without_secret_values_a_leftover_secret_is_deleted() -> None:
    store = MemorySecrets()
    store.secrets[("octo", NAME)] = {"data": {"old": "x"}, "labels": {}}
    rendered = render_values(dto(), OperatorContext(pool_namespace="octo"))

    await apply_secret(store, "octo", dto(), rendered)

    assert store.secrets == {}
    assert store.operations == [("delete", NAME)]


async def test_a_failed_restore_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    class RestoreFails(MemorySecrets):
        async def restore(self, namespace: str, name: str, snapshot: SecretSnapshot | None) -> None:
            raise SecretError(namespace, name, "restore", OSError("api server gone"))

    caplog.set_level(logging.ERROR)
    await restore_secret(RestoreFails(), "octo", RELEASE, NAME, None, {})

    (record,) = caplog.records
    assert record.getMessage() == (
        f"release {RELEASE}: could not restore Secret {NAME} after the failed upgrade: "
        f"could not restore Secret octo/{NAME}: OSError: api server gone"
    )


def test_a_secret_error_is_a_failed_step() -> None:
    assert isinstance(SecretError("octo", NAME, "apply", OSError("x")), DeployFailed)
