"""Central mode: what a burst of pool deploys costs the API server, counted by the API server itself.

A controller deploying hundreds of pools at once waits for every CommunicationPool to be Online, and on
a busy API server each request per pool is time. Before: a GET of the name before each create, kopf's
finalizer patch (and a second round of handling after it) before its last-handled patch, and two status
writes ("In Progress", then "Registered") per pool.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from kubernetes_asyncio import client

from communication_operator.pools import FINALIZER, GROUP, PLURAL, VERSION
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.waiting import eventually, settled
from tests.integration.pools.conftest import OperatorFactory, Pools

pytestmark = pytest.mark.cluster

TENANT = "acme"


async def pool_requests(api: client.ApiClient) -> Counter[str]:
    """CommunicationPool requests the API server has served, by ``VERB[/subresource]`` (its counter)."""
    response = await api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=10
    )
    counts: Counter[str] = Counter()
    for line in (await response.read()).decode().splitlines():
        if not line.startswith("apiserver_request_total{") or f'resource="{PLURAL}"' not in line:
            continue
        labels = dict(
            part.split("=", 1)
            for part in line[line.index("{") + 1 : line.rindex("}")].split(",")
            if "=" in part
        )
        subresource = labels.get("subresource", '""').strip('"')
        key = labels["verb"].strip('"') + (f"/{subresource}" if subresource else "")
        if key == "LIST":
            # The 1.20 API server counts a GET of a custom object that finds nothing as a LIST (404).
            key += " " + labels["code"].strip('"')
        counts[key] += int(float(line.rsplit(" ", 1)[1]))
    return counts


async def test_a_burst_of_pool_deploys_costs_few_requests_per_pool(
    controller_sim: RunningSimulator,
    pools: Pools,
    start_operator: OperatorFactory,
    kube_api: client.ApiClient,
) -> None:
    count = 20
    await start_operator(central=True)
    admin = controller_sim.admin
    rt_ids = [await admin.create_pool(TENANT, f"burst-{i}", "Cloud") for i in range(count)]
    # The API server counts every namespace: start once an earlier test's teardown is over.
    before = await settled(lambda: pool_requests(kube_api), what="CommunicationPool request counters")

    await asyncio.gather(*(admin.deploy_pool(rt_id) for rt_id in rt_ids))

    listed: list[dict[str, Any]] = []

    async def all_registered() -> bool:
        listing = await pools.custom.list_namespaced_custom_object(GROUP, VERSION, pools.namespace, PLURAL)
        listed[:] = listing["items"]
        return len(listed) == count and all(
            (item.get("status") or {}).get("communicationStatus") == "Registered" for item in listed
        )

    await eventually(all_registered, timeout=60, what="every deployed pool Registered")
    await asyncio.sleep(1.5)  # a late write (a delayed "In Progress", say) would show up now
    spent = await pool_requests(kube_api) - before
    for item in listed:
        assert FINALIZER in item["metadata"]["finalizers"]  # still protected: the delete handler runs
    assert spent["LIST 404"] == 0, spent  # created first: no lookup of the name before each create
    # kopf's last-handled annotation only; the finalizer came with the create (before: two patches).
    assert spent["PATCH"] <= count, spent
    # "Registered" only, where the registration was over before "In Progress" was due (before: both).
    assert spent["PATCH/status"] < 2 * count, spent
    assert spent["POST"] == count, spent
