"""The running operator at log level DEBUG: no secret, nor its base64 form, in any log line.

The real operator (app wiring, kopf, hub, kubernetes-asyncio) deploys a workload whose secret override,
repository password and the broker password end up in the per-release Secret; kubernetes-asyncio logs
the API server's response bodies (the Secret's data in base64) at DEBUG. Everything the process logs,
ours and the libraries', is captured through our formatter and through a plain handler of its own.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from communication_operator.logs import TextFormatter, install
from communication_operator.settings import HelmSettings
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.cluster import ChartRepo, KubeCluster
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import (  # noqa: F401 - fixtures used by name
    OperatorFactory,
    Pools,
    pools,
    start_operator,
)

pytestmark = pytest.mark.cluster

PLANTED = "pl4nted-0verride\u00e9 with space"
#: start_operator's broker password (tests/integration/pools/conftest.py).
BROKER_PASSWORD = "broker-password"


@pytest.fixture
def debug_log() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Every record of the process at DEBUG: through our text formatter, and through a plain handler."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    library_levels = {
        name: logging.getLogger(name).level for name in ("kubernetes_asyncio", "kopf", "aiohttp")
    }
    ours, plain = io.StringIO(), io.StringIO()
    install(TextFormatter(), logging.DEBUG, ours)
    plain_handler = logging.StreamHandler(plain)
    root.addHandler(plain_handler)
    for name in library_levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield ours, plain
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, library_level in library_levels.items():
        logging.getLogger(name).setLevel(library_level)


def _forms(secret: str) -> set[str]:
    raw = secret.encode()
    return {secret, base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("=")}


async def test_debug_logs_of_a_deploy_carry_no_secret_in_any_form(
    kube_cluster: KubeCluster,
    controller_sim: RunningSimulator,
    pools: Pools,  # noqa: F811
    start_operator: OperatorFactory,  # noqa: F811
    fake_kubelet: FakeKubelet,
    chart_repo_auth: ChartRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    debug_log: tuple[io.StringIO, io.StringIO],
) -> None:
    for name in ("CACHE", "CONFIG", "DATA"):  # keep helm's repository files out of the home directory
        monkeypatch.setenv(f"HELM_{name}_HOME", str(tmp_path / name.lower()))
    assert chart_repo_auth.password is not None
    pool = await controller_sim.admin.create_pool("acme", "edge-site", "Edge")
    await start_operator(central=False, helm=HelmSettings(binary=str(kube_cluster.helm), timeoutseconds=30))
    await pools.create("edge-site", "acme", pool)
    workload = await controller_sim.admin.create_workload(
        "acme",
        pool,
        "web",
        repository_url=chart_repo_auth.url,
        repository_username=chart_repo_auth.username,
        repository_password=chart_repo_auth.password,
        chart_name="web",
        chart_version="0.1.0",
        values=[{"path": "config.password", "value": PLANTED, "isSecret": True}],
    )
    await controller_sim.admin.deploy_workload(workload)

    async def deployed() -> bool:
        return bool((await controller_sim.admin.workload(workload))["deploymentState"] == "Deployed")

    await eventually(deployed, timeout=60, what="workload Deployed")

    ours, plain = (stream.getvalue() for stream in debug_log)
    # The library's request/response logging was on: the Secret's create response is in the log, masked.
    assert "response body" in ours
    assert '"kind":"Secret"' in ours.replace(" ", "")
    for text, channel in ((ours, "our formatter"), (plain, "a plain handler")):
        for secret in (PLANTED, BROKER_PASSWORD, chart_repo_auth.password):
            leaked = sorted(form for form in _forms(secret) if form in text)
            assert not leaked, f"{channel} carries {secret[:3]}… as {leaked}"
