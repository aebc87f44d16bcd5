"""A secret sweep over every output channel, with the operator logging at DEBUG (issue 13, items 1-4).

Secrets are planted everywhere the operator handles them: repository credentials (a password-protected
chart repository, a wrong password, a password inside an invalid repository URL), secret value
overrides, the broker password and the cluster secrets; and a fake-kubelet pod message that carries a
secret containing tabs, spaces and a newline. After the deploys have settled, no log line (ours or a
library's), Event, CommunicationPool status, status or progress message at the controller, or hub
message may carry a planted value in any form (:mod:`tests.faults.leaks`).
"""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio import client

from communication_operator.contracts import ValueOverrideDto
from octo_devtools.testing.cluster import ChartRepo
from tests.faults.conftest import READY_IMAGE, FaultRig, image_values
from tests.faults.leaks import Planted, find_leaks, plant

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

LEAKY_IMAGE = "example.invalid/leaky"
#: Events the (fake) kubelet and scheduler write are the cluster's words, not the operator's.
CLUSTER_COMPONENTS = frozenset({"kubelet", "default-scheduler"})


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_planted_secret_reaches_any_output_channel(
    rig: FaultRig, chart_repo_auth: ChartRepo, log_format: str
) -> None:
    broker = plant("broker")
    mongo_user, mongo_admin, stream = plant("mongo-user"), plant("mongo-admin"), plant("stream-data")
    override = plant("override")
    spaced = plant("spaced", "multi word\tpass {core} phrase\nsecond line")
    url_password = plant("url-password")
    wrong_password = plant("wrong-password")
    assert chart_repo_auth.password is not None
    repository = Planted("repository-password", chart_repo_auth.password, chart_repo_auth.password)
    planted = [
        broker,
        mongo_user,
        mongo_admin,
        stream,
        override,
        spaced,
        url_password,
        wrong_password,
        repository,
    ]

    rig.kubelet.add_rule(
        f"{LEAKY_IMAGE}:*",
        "image-pull-backoff",
        message=f'failed to pull and unpack image "{LEAKY_IMAGE}:1": pull access denied, credentials '
        f"{spaced.value} were rejected",
    )
    operator = await rig.start_operator(
        LOG__LEVEL="DEBUG",
        LOG__FORMAT=log_format,
        BROKERPASSWORD=broker.value,
        CLUSTERSECRETS__MONGODBUSERPASSWORD=mongo_user.value,
        CLUSTERSECRETS__MONGODBADMINPASSWORD=mongo_admin.value,
        CLUSTERSECRETS__STREAMDATAPASSWORD=stream.value,
    )
    admin = rig.sim.admin
    good = await rig.create_workload(
        "good",
        repository_url=chart_repo_auth.url,
        repository_username=chart_repo_auth.username,
        repository_password=chart_repo_auth.password,
        receives_cluster_secrets=True,
        values_yaml=image_values(READY_IMAGE),
        values=[ValueOverrideDto(path="config.greeting", value=override.value, is_secret=True)],
    )
    leaky = await rig.create_workload(
        "leaky",
        values_yaml=image_values(LEAKY_IMAGE),
        receives_cluster_secrets=True,
        values=[ValueOverrideDto(path="config.color", value=spaced.value, is_secret=True)],
    )
    bad_url = await rig.create_workload(
        "bad-url", repository_url=f"http://fault-user:{url_password.value}@127.0.0.1:99999/charts"
    )
    wrong = await rig.create_workload(
        "wrong-password",
        repository_url=chart_repo_auth.url,
        repository_username=chart_repo_auth.username,
        repository_password=wrong_password.value,
    )
    for workload in (good, leaky, bad_url, wrong):
        await admin.deploy_workload(workload)
    finals = {w: await rig.wait_final(w, timeout=120) for w in (good, leaky, bad_url, wrong)}

    # The sweep only means something if every path ran: one success, three failures, live progress.
    outcome = {
        w: [r["success"] for r in f["reports"] if r["kind"] == "status"][-1] for w, f in finals.items()
    }
    assert outcome == {good: True, leaky: False, bad_url: False, wrong: False}, finals
    assert any(r["kind"] == "progress" for r in finals[leaky]["reports"]), finals[leaky]
    assert operator.running
    # Stop it first, so the sweep also covers what it logs and reports while shutting down.
    assert await operator.terminate() == 0, operator.log_tail()

    channels = {
        "operator log": operator.log_text(),
        "controller calls (hub messages)": json.dumps(await admin.calls()),
        "controller state (statuses, progress)": json.dumps(await admin.state()),
        "CommunicationPools": json.dumps(await rig.pool_objects()),
        "Events": json.dumps(await _operator_events(rig)),
    }
    leaks = find_leaks(channels, planted)
    assert not leaks, f"{len(leaks)} leak(s) with the log at DEBUG/{log_format}:\n" + "\n".join(leaks)


async def _operator_events(rig: FaultRig) -> list[dict[str, object]]:
    """Every Event in the namespace except those the kubelet and scheduler wrote."""
    listing = await client.CoreV1Api(rig.api).list_namespaced_event(rig.namespace)
    events = []
    for event in listing.items:
        component = (event.source.component if event.source else None) or event.reporting_component
        if component in CLUSTER_COMPONENTS:
            continue
        events.append(rig.api.sanitize_for_serialization(event))
    return events
