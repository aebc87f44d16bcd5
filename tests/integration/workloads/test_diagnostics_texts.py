"""The texts the controller simulator receives for failing deploys on the local cluster (real helm,
fake kubelet): upstream's diagnostics lines (octo-spec §4.11) and no secret in any of them, even one
the kubelet writes with whitespace into a pod message and an event (issue 13 items 1-2)."""

from __future__ import annotations

import base64
import logging
import re

import pytest

from communication_operator.contracts import ServerMethod
from octo_devtools.devcluster.kubelet import FakeKubelet

from .conftest import DeployerFactory

pytestmark = pytest.mark.cluster

PROGRESS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS
STATUS = ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS
#: A passphrase with spaces and a tab that spans two lines, as a multi-line key would.
WHITESPACE_SECRET = "correct horse\tbattery\n  staple-4711-zq"


def _windows(secret: str, size: int = 6) -> set[str]:
    flat = " ".join(secret.split())
    return {text[i : i + size] for text in (secret, flat) for i in range(len(text) - size + 1)}


async def test_a_secret_with_whitespace_in_a_pod_message_reaches_no_report_or_log(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The kubelet quotes the value it could not use: in the container's waiting message and in a
    # Warning event ("Error: <message>").
    fake_kubelet.add_rule(
        "example.invalid/leaky*",
        "create-container-config-error",
        message=f"couldn't use key value {WHITESPACE_SECRET} from secret",
    )
    d = await deployer()

    workload = await d.deploy(
        values=[
            {"path": "image.repository", "value": "example.invalid/leaky"},
            {"path": "config.password", "value": WHITESPACE_SECRET, "isSecret": True},
        ]
    )
    settled = await d.wait_settled(workload)

    assert settled["deploymentState"] == "Error"
    reports = await d.reports(workload)
    progress = [text for method, text, _ in reports if method == PROGRESS]
    (status,) = [text for method, text, _ in reports if method == STATUS]
    # The message did arrive, masked: the test is not passing because nothing was reported.
    assert any(
        "waiting: CreateContainerConfigError — couldn't use key value *** from secret" in t for t in progress
    )
    assert "\n\nPod diagnostics:\n" in status
    assert "couldn't use key value *** from secret" in status
    assert "Error: couldn't use key value *** from secret" in status  # the event line
    encoded = base64.b64encode(WHITESPACE_SECRET.encode()).decode()
    outputs = [*progress, status, settled.get("statusMessage") or "", caplog.text]
    for text in outputs:
        assert encoded not in text
        for window in _windows(WHITESPACE_SECRET):
            assert window not in text, f"{window!r} of the secret reached {text[:200]!r}"


async def test_a_crash_loop_is_reported_in_upstream_lines_then_in_the_failed_status(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule(
        "example.invalid/oom*", "crash-loop-backoff", exit_code=137, reason="OOMKilled", message="killed\n"
    )
    d = await deployer()

    workload = await d.deploy(values=[{"path": "image.repository", "value": "example.invalid/oom"}])
    settled = await d.wait_settled(workload)

    release = d.release(workload)
    reports = await d.reports(workload)
    progress = [text for method, text, _ in reports if method == PROGRESS]
    status = settled["statusMessage"]
    pod = rf"{re.escape(release)}-web-[a-z0-9]+-[a-z0-9]+"
    waiting = (
        rf"Pod {pod} container 'web' waiting: CrashLoopBackOff — back-off \S+ restarting failed container=web"
    )
    terminated = rf"Pod {pod} container 'web' previously terminated: exit code 137 \(OOMKilled\) — killed"
    assert any(re.search(waiting, text) for text in progress), progress
    assert any(re.search(terminated, text) for text in progress), progress
    head, diagnostics = status.split("\n\nPod diagnostics:\n")
    assert head.startswith(f"helm upgrade --install {release} stopped early (fail-fast)")
    lines = diagnostics.split("\n")
    kinds = ["pod" if line.startswith("Pod ") else "event" for line in lines]
    assert kinds == sorted(kinds, key=lambda kind: kind == "event"), "pod lines first, then events"
    assert any(re.fullmatch(waiting + r".*", line) for line in lines), lines
    assert any(re.fullmatch(terminated, line) for line in lines), lines
    assert all(line == line.rstrip() for line in lines)


async def test_a_warning_event_is_reported_once_in_its_upstream_line(
    deployer: DeployerFactory, fake_kubelet: FakeKubelet
) -> None:
    fake_kubelet.add_rule(
        "example.invalid/big*", "unschedulable", message="0/1 nodes are available: 1 Insufficient cpu."
    )
    d = await deployer()

    workload = await d.deploy(
        values=[
            {"path": "image.repository", "value": "example.invalid/big"},
            {"path": "replicaCount", "value": "2"},
        ]
    )
    settled = await d.wait_settled(workload)

    release = d.release(workload)
    progress = [text for method, text, _ in await d.reports(workload) if method == PROGRESS]
    pod = rf"{re.escape(release)}-web-[a-z0-9]+-[a-z0-9]+"
    event = rf"Event Pod/{pod}: FailedScheduling — 0/1 nodes are available: 1 Insufficient cpu\."
    assert progress
    assert all(re.fullmatch(rf"{event}(\n{event})*", text) for text in progress), progress
    head, diagnostics = settled["statusMessage"].split("\n\nPod diagnostics:\n")
    assert head.startswith(f"helm upgrade --install {release} stopped early (fail-fast)")
    lines = diagnostics.split("\n")
    assert len(lines) == 2, lines  # one line per pod's event, no repeats
    assert all(re.fullmatch(event, line) for line in lines), lines
