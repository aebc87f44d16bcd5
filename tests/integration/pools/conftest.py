"""Fixtures for pool integration tests: the CRDs on the local API server, and operators run in-process.

Each test gets its own namespace; its operators watch only that namespace (and, in central mode, create
pools there), so tests never see each other's objects.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.app import OperatorThread
from communication_operator.pools import PoolKey
from communication_operator.pools.kinds import COMMUNICATION_POOL, DEPLOYMENT_SITE, KINDS, PoolKind
from communication_operator.settings import HealthSettings, Settings
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import KubeCluster

T = TypeVar("T")


class Pools:
    """Pool resource (CommunicationPool by default, or DeploymentSite) and Secret access for one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str, kind: PoolKind = COMMUNICATION_POOL) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.kind = kind

    async def create(self, name: str, tenant_id: str, pool_rt_id: str) -> dict[str, Any]:
        body = {
            "apiVersion": self.kind.api_version,
            "kind": self.kind.kind,
            "metadata": {"name": name},
            "spec": self.kind.spec_body(PoolKey(tenant_id, pool_rt_id)),
        }
        result: dict[str, Any] = await self.custom.create_namespaced_custom_object(
            self.kind.group, self.kind.version, self.namespace, self.kind.plural, body
        )
        return result

    async def get(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                self.kind.group, self.kind.version, self.namespace, self.kind.plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def names(self) -> list[str]:
        listing = await self.custom.list_namespaced_custom_object(
            self.kind.group, self.kind.version, self.namespace, self.kind.plural
        )
        return sorted(item["metadata"]["name"] for item in listing["items"])

    async def delete(self, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(
            self.kind.group, self.kind.version, self.namespace, self.kind.plural, name
        )

    async def status(self, name: str) -> dict[str, Any]:
        body = await self.get(name)
        return dict((body or {}).get("status") or {})

    async def condition(self, name: str, kind: str) -> dict[str, Any]:
        for condition in (await self.status(name)).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return {}

    async def secret_names(self) -> list[str]:
        listing = await self.core.list_namespaced_secret(self.namespace)
        return sorted(
            s.metadata.name for s in listing.items if s.metadata.name.endswith("-octo-mesh-connection")
        )

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        listing = await self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        ordered = sorted(listing.items, key=lambda e: e.first_timestamp or e.metadata.creation_timestamp)
        return [(e.type, e.reason, e.message) for e in ordered]

    async def release_finalizers(self) -> None:
        """After the operators stopped: let leftovers (of either kind) go so the namespace can be deleted."""
        for kind in KINDS:
            listing = await self.custom.list_namespaced_custom_object(
                kind.group, kind.version, self.namespace, kind.plural
            )
            for item in listing["items"]:
                with contextlib.suppress(ApiException):
                    await self.custom.patch_namespaced_custom_object(
                        kind.group,
                        kind.version,
                        self.namespace,
                        kind.plural,
                        item["metadata"]["name"],
                        {"metadata": {"finalizers": None}},
                        _content_type="application/merge-patch+json",
                    )


@pytest.fixture
async def pools(pool_crd: dict[str, Any], kube_api: client.ApiClient, namespace: str) -> Pools:
    return Pools(kube_api, namespace)


@pytest.fixture
async def sites(pool_crd: dict[str, Any], kube_api: client.ApiClient, namespace: str) -> Pools:
    """The same access for DeploymentSites (its leftovers are released by ``pools``)."""
    return Pools(kube_api, namespace, DEPLOYMENT_SITE)


OperatorFactory = Callable[..., Awaitable[OperatorThread]]


@pytest.fixture
async def start_operator(
    kube_cluster: KubeCluster, namespace: str, pools: Pools, controller_sim: RunningSimulator
) -> AsyncIterator[OperatorFactory]:
    """``await start_operator(central=False, **settings)``: an operator for this test's namespace and
    simulator, on its own thread and loop (kopf cancels foreign tasks on its loop when it stops);
    every operator still running is stopped at the end."""
    running: list[OperatorThread] = []

    async def start(
        *, central: bool = False, sim: RunningSimulator | None = None, **fields: Any
    ) -> OperatorThread:
        settings = Settings(
            communication_controller_uri=(sim or controller_sim).base_url,
            auto_manage_pools=central,
            watch_namespace=namespace,
            pool_namespace=namespace,
            pool_registration_retry_seconds=fields.pop("pool_registration_retry_seconds", 1.0),
            pre_update_tenant_delay_seconds=fields.pop("pre_update_tenant_delay_seconds", 0.5),
            shutdown_drain_seconds=2.0,
            broker_user="octo-broker",
            broker_password="broker-password",
            health=HealthSettings(port=0),
            **fields,
        )
        operator = OperatorThread(settings, kubeconfig=kube_cluster.kubeconfig)
        running.append(operator)
        await operator.start()
        return operator

    yield start
    for operator in running:
        if operator.running:
            await operator.stop()
    await pools.release_finalizers()
