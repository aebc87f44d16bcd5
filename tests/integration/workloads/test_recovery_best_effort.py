"""A stuck-release recovery that cannot act is best effort (octo-spec §4.10), with the real helm.

A helm that is stopped (SIGSTOP) while it installs keeps the release ``pending-install`` and stays
in /proc naming the release, so the operator waits for it, gives up on the recovery, and deploys
anyway: helm itself then refuses the locked release, and that refusal, in upstream's words, is the
status the controller shows.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from communication_operator.contracts import ServerMethod
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.testing.waiting import eventually

from .conftest import DeployerFactory

pytestmark = pytest.mark.cluster

CHARTS = Path(__file__).resolve().parents[2] / "charts"
FOREIGN_WAIT = 4.0


@pytest.mark.parametrize("helm", ["helm", "helm3"])
async def test_a_release_another_helm_keeps_locked_gets_helms_own_refusal(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet, helm: str
) -> None:
    fake_kubelet.add_rule("example.invalid/*", "ready", delay=60)
    d = await deployer(helm=helm, timeout_seconds=FOREIGN_WAIT)
    workload = await d.create()
    release = d.release(workload)
    foreign = await asyncio.create_subprocess_exec(
        str(d.helm_binary), "upgrade", "--install", release, str(CHARTS / "web"), "-n", d.namespace,
        "--set", "image.repository=example.invalid/slow", "--wait", "--timeout", "60s",
        env=d.helm_env, stdout=-1, stderr=-1, start_new_session=True,
    )  # fmt: skip
    try:

        async def pending() -> bool:
            history = await d.history(release)
            return bool(history) and history[-1]["status"] == "pending-install"

        await eventually(pending, timeout=30, what=f"{release} in pending-install")
        os.killpg(foreign.pid, signal.SIGSTOP)  # alive, named in /proc, never finishing

        await d.sim.admin.deploy_workload(workload)
        settled = await d.wait_settled(workload, timeout=60)
    finally:
        os.killpg(foreign.pid, signal.SIGKILL)
        await foreign.wait()

    assert settled["deploymentState"] == "Error", settled
    message = settled["statusMessage"]
    # octo-spec §4.1/§4.3: helm's failure text naming the release, not a text of our recovery.
    assert message.startswith(
        f"helm upgrade --install --dry-run=server {release} failed with exit code 1. stderr: "
    ), message
    assert "another operation (install/upgrade/rollback) is in progress" in message, message
    reports = await d.reports(workload)
    progress = [
        text for method, text, _ in reports if method == ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS
    ]
    assert not any("Recovered release" in text for text in progress), progress
