"""A Secret restore that fails never changes what a deploy reports (review finding 11).

The restore runs inside ``except BaseException`` around the upgrade; whatever it raises (an API error, a
dropped connection, a timeout) goes to the log, and the deploy's own outcome stands: a cancelled deploy
reports nothing, a failed one reports helm's error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from communication_operator.contracts import ValueOverrideDto
from communication_operator.workloads.secrets import ReleaseSecrets, SecretError, SecretSnapshot

from .doubles import Harness, MemorySecrets, until


class RestoreFails(MemorySecrets):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    async def restore(self, namespace: str, name: str, snapshot: SecretSnapshot | None) -> None:
        self.operations.append(("restore", name))
        raise self.error


SECRET_OVERRIDE = [ValueOverrideDto(path="db.password", value="pw-0123456789", is_secret=True)]
TRANSPORT_ERRORS = [aiohttp.ClientConnectionError("api server gone"), TimeoutError(), OSError("reset")]


def with_failing_restore(tmp_path: Path, error: BaseException) -> Harness:
    h = Harness(tmp_path)
    h.fake.history((3, "deployed"))
    h.secrets = RestoreFails(error)
    h.rebuild()
    return h


@pytest.mark.parametrize("error", TRANSPORT_ERRORS, ids=lambda e: type(e).__name__)
async def test_a_cancelled_deploy_reports_nothing_when_the_restore_fails(
    tmp_path: Path, error: BaseException
) -> None:
    h = with_failing_restore(tmp_path, error)
    h.fake.set("upgrade", sleep=30)
    await h.deploy(values=SECRET_OVERRIDE)
    await until(lambda: h.fake.calls("upgrade"))

    async with asyncio.timeout(10):
        await h.service.shutdown()

    assert ("restore", h.secrets.operations[-1][1]) in h.secrets.operations
    assert h.hub.statuses() == []


@pytest.mark.parametrize("error", TRANSPORT_ERRORS, ids=lambda e: type(e).__name__)
async def test_a_failed_upgrade_reports_helms_error_when_the_restore_fails(
    tmp_path: Path, error: BaseException
) -> None:
    h = with_failing_restore(tmp_path, error)
    h.fake.set("upgrade", exit=1, stderr="Error: UPGRADE FAILED: timed out waiting for the condition")
    await h.deploy(values=SECRET_OVERRIDE)
    await h.settle()

    (status,) = h.hub.statuses()
    assert status.success is False
    assert "UPGRADE FAILED" in status.status_message
    assert "in the operator" not in status.status_message


class UnreachableApi:
    async def _gone(self, *args: object, **kwargs: object) -> None:
        raise aiohttp.ClientConnectionError("api server gone")

    read_namespaced_secret = replace_namespaced_secret = create_namespaced_secret = _gone
    delete_namespaced_secret = _gone


@pytest.mark.parametrize("operation", ["read", "restore", "apply", "delete"])
async def test_an_unreachable_api_server_is_a_secret_error(operation: str) -> None:
    store = ReleaseSecrets.__new__(ReleaseSecrets)
    store._core = UnreachableApi()
    store._timeout = 1.0
    calls = {
        "read": lambda: store.read("octo", "s"),
        "restore": lambda: store.restore("octo", "s", SecretSnapshot(data={"k": "dg=="})),
        "apply": lambda: store.apply("octo", "s", {"k": "v"}, {}, "w"),
        "delete": lambda: store.delete("octo", "s"),
    }

    with pytest.raises(SecretError, match=r"Secret octo/s: ClientConnectionError: api server gone$"):
        await calls[operation]()
