"""Central mode at scale against the local API server: the reverse sync lists release records by their
metadata only, and a burst of pool deploys costs a few listings and reports, not one per pool."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections import Counter
from typing import Any

import pytest
from kubernetes_asyncio import client

from communication_operator.kube.metadata import list_metadata
from communication_operator.pools.reverse_sync import DEFAULT_MIN_INTERVAL as REPORT_INTERVAL
from communication_operator.workloads.deployed import DEPLOYED_RELEASES_SELECTOR, HelmReleaseWorkloads
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.waiting import eventually
from tests.integration.pools.conftest import OperatorFactory, Pools

pytestmark = pytest.mark.cluster

TENANT = "acme"
PAYLOAD_BYTES = 50_000  # about the size of a helm release record's payload for a real chart


def release_record(name: str, status: str, pool_rt_id: str, workload_rt_id: str) -> dict[str, Any]:
    """A Secret shaped like helm's release record ``sh.helm.release.v1.<name>.v1``, payload included."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v1",
            "labels": {
                "owner": "helm",
                "name": name,
                "status": status,
                "version": "1",
                "octo-mesh.meshmakers.io/tenant": TENANT,
                "octo-mesh.meshmakers.io/pool-rt-id": pool_rt_id,
                "octo-mesh.meshmakers.io/workload-rt-id": workload_rt_id,
                "octo-mesh.meshmakers.io/managed-by": "communication-operator",
            },
        },
        "data": {"release": base64.b64encode(os.urandom(PAYLOAD_BYTES)).decode()},
    }


async def test_release_records_are_listed_by_their_metadata_only(
    kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    pool = "65f0c0ffee0000000000aaaa"
    workloads = [f"65f0c0ffee00000000000{i:03d}" for i in range(5)]
    for i, workload in enumerate(workloads):
        await core.create_namespaced_secret(namespace, release_record(f"rel-{i}", "deployed", pool, workload))
    await core.create_namespaced_secret(namespace, release_record("old", "superseded", pool, "0" * 24))

    listing = await list_metadata(
        kube_api,
        f"/api/v1/namespaces/{namespace}/secrets",
        label_selector=DEPLOYED_RELEASES_SELECTOR,
        page_size=2,
    )

    assert listing.metadata_only  # the 1.20 API server honours PartialObjectMetadataList
    assert listing.requests == 3  # 5 records, 2 per page
    assert sorted(m["name"] for m in listing.items) == [f"sh.helm.release.v1.rel-{i}.v1" for i in range(5)]
    # 5 x ~67 KB of payload stayed on the server.
    assert listing.bytes_read < 5 * PAYLOAD_BYTES // 10, listing.bytes_read
    source = HelmReleaseWorkloads(kube_api, namespace)
    assert await source.workload_rt_ids_by_pool() == {(TENANT, pool): workloads}


async def secret_lists(api: client.ApiClient) -> float:
    """How many namespaced Secret LIST requests the API server has served (its own counter)."""
    response = await api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=10
    )
    text = (await response.read()).decode()
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'resource="secrets"' in line
            and 'verb="LIST"' in line
            and 'code="200"' in line
            and 'scope="namespace"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_burst_of_pool_deploys_lists_and_reports_a_few_times_not_once_per_pool(
    controller_sim: RunningSimulator,
    pools: Pools,
    start_operator: OperatorFactory,
    kube_api: client.ApiClient,
) -> None:
    count = 40
    await start_operator(central=True)
    admin = controller_sim.admin
    rt_ids = [await admin.create_pool(TENANT, f"cloud-{i}", "Cloud") for i in range(count)]
    lists_before = await secret_lists(kube_api)
    began = time.time()

    await asyncio.gather(*(admin.deploy_pool(rt_id) for rt_id in rt_ids))

    async def all_reported() -> bool:
        reports = await admin.calls("ReportDeployedStateAsync")
        return {p["poolRtId"] for c in reports for p in c["arguments"][0]} >= set(rt_ids)

    await eventually(all_reported, timeout=60, what="every deployed pool reported")
    state = await admin.state()
    assert {p["poolRtId"] for p in state["pools"] if p["communicationState"] == "Online"} >= set(rt_ids)
    await asyncio.sleep(1.0)  # anything still queued would show up now
    reports = await admin.calls("ReportDeployedStateAsync")
    listings = await secret_lists(kube_api) - lists_before
    named = Counter(p["poolRtId"] for c in reports for p in c["arguments"][0])
    assert set(named) == set(rt_ids)
    assert all(n == 1 for n in named.values()), named  # each pool once: registered once, reported once
    # Before: one listing and one report per pool (40 each). Now one per batch, and a batch at most
    # every REPORT_INTERVAL (how many depends on how fast the operator provisions on this machine).
    span = max(c["time"] for c in reports) - began
    assert len(reports) < count, len(reports)
    assert len(reports) <= span / REPORT_INTERVAL + 2, (len(reports), span)
    # One listing per report, plus whatever else lists Secrets meanwhile: the namespace controller lists
    # every resource of the namespaces earlier tests left to delete (the counter is the whole server's).
    assert len(reports) <= listings < count / 2, (listings, len(reports))
    assert len(await pools.names()) == count
