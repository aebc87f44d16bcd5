"""Test doubles for the pool services' unit tests: an in-memory hub and an in-memory Kubernetes store.

They implement the same methods as :class:`communication_operator.hub.HubConnection` and
:class:`communication_operator.kube.KubeObjects` that the services call, and record every call.
Integration tests use the real hub, simulator and API server instead.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from communication_operator.contracts import DeployedPoolDto, ServerMethod
from communication_operator.hub import HubError, NotConnected
from communication_operator.kube.objects import EventType, ObjectRef, SecretMetadata


class FakeHub:
    """Answers invocations like a controller would; ``refusals`` maps poolRtId → HubException text."""

    def __init__(self, *, connected: bool = True) -> None:
        self.connected = connected
        self.calls: list[tuple[ServerMethod, tuple[Any, ...]]] = []
        self.reports: list[tuple[ServerMethod, tuple[Any, ...]]] = []
        self.refusals: dict[str, str] = {}
        self.deployed_pools: list[DeployedPoolDto] = []
        self.drop_on: ServerMethod | None = None  # the connection "drops" when this method is invoked
        self.delay = 0.0
        self.state_listeners: list[Callable[[bool], None]] = []
        self.handlers: dict[str, Callable[..., Awaitable[None]]] = {}
        self.hooks: list[Callable[[], Awaitable[None]]] = []

    async def invoke(self, method: ServerMethod, *args: Any, timeout: float | None = None) -> Any:
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.connected or method == self.drop_on:
            raise NotConnected(f"{method}: not connected to the controller")
        self.calls.append((method, args))
        if method in (ServerMethod.REGISTER_POOL, ServerMethod.UNREGISTER_POOL):
            message = self.refusals.get(args[1])
            if message is not None:
                raise HubError(
                    str(method),
                    f"An unexpected error occurred invoking '{method}' on the server. "
                    f"HubException: {message}",
                )
        if method == ServerMethod.REGISTER_OPERATOR:
            return list(self.deployed_pools)
        return None

    async def report(self, method: ServerMethod, *args: Any) -> None:
        self.reports.append((method, args))

    def on(self, method: Any, handler: Callable[..., Awaitable[None]]) -> None:
        self.handlers[str(method)] = handler

    def on_connected(self, hook: Callable[[], Awaitable[None]]) -> None:
        self.hooks.append(hook)

    def calls_of(self, method: ServerMethod) -> list[tuple[Any, ...]]:
        return [args for m, args in self.calls if m == method]

    def set_connected(self, connected: bool) -> None:
        self.connected = connected
        for listener in self.state_listeners:
            listener(connected)


@dataclass
class FakeKube:
    """Objects by (kind, namespace, name); custom objects under their plural."""

    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[ObjectRef, EventType, str, str]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # "create communicationpools ns/name", in call order
    status_failures: int = 0  # the next N status patches fail with an API error
    delay: float = 0.0  # seconds each list/get/create/delete takes, like a round trip to the API server
    in_flight: int = 0
    max_in_flight: int = 0

    async def _round_trip(self) -> None:
        if not self.delay:
            return
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1

    async def get_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> Any | None:
        await self._round_trip()
        found = self.objects.get((plural, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def list_custom(
        self, group: str, version: str, plural: str, namespace: str
    ) -> list[dict[str, Any]]:
        self.log.append(f"list {plural} {namespace}")
        await self._round_trip()
        return [
            copy.deepcopy(b)
            for (kind, ns, _), b in self.objects.items()
            if kind == plural and ns == namespace
        ]

    async def create_custom(
        self, group: str, version: str, plural: str, namespace: str, body: dict[str, Any]
    ) -> bool:
        await self._round_trip()
        return self._create(plural, namespace, body)

    async def delete_custom(self, group: str, version: str, plural: str, namespace: str, name: str) -> bool:
        await self._round_trip()
        return self._delete(plural, namespace, name)

    async def patch_custom_status(
        self, group: str, version: str, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> bool:
        if self.status_failures:
            self.status_failures -= 1
            raise RuntimeError("API server unavailable")
        found = self.objects.get((plural, namespace, name))
        self.log.append(f"status {plural} {namespace}/{name}")
        if found is None:
            return False
        found.setdefault("status", {}).update(copy.deepcopy(status))
        return True

    async def create_secret(self, namespace: str, body: dict[str, Any]) -> bool:
        await self._round_trip()
        return self._create("secrets", namespace, body)

    async def secret_metadata(self, namespace: str, name: str) -> SecretMetadata | None:
        found = self.objects.get(("secrets", namespace, name))
        if found is None:
            return None
        metadata = found.get("metadata") or {}
        return SecretMetadata(uid=str(metadata.get("uid") or ""), labels=dict(metadata.get("labels") or {}))

    async def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> bool:
        await self._round_trip()
        found = self.objects.get(("secrets", namespace, name))
        if uid and found is not None and (found.get("metadata") or {}).get("uid") != uid:
            self.log.append(f"delete secrets {namespace}/{name} refused: uid precondition")
            return False
        return self._delete("secrets", namespace, name)

    async def post_event(self, ref: ObjectRef, event_type: EventType, reason: str, message: str) -> None:
        self.events.append((ref, event_type, reason, message))

    def _create(self, kind: str, namespace: str, body: dict[str, Any]) -> bool:
        name = body["metadata"]["name"]
        self.log.append(f"create {kind} {namespace}/{name}")
        if (kind, namespace, name) in self.objects:
            return False
        self.objects[(kind, namespace, name)] = copy.deepcopy(body)
        return True

    def _delete(self, kind: str, namespace: str, name: str) -> bool:
        self.log.append(f"delete {kind} {namespace}/{name}")
        return self.objects.pop((kind, namespace, name), None) is not None

    def status_of(self, namespace: str, name: str) -> dict[str, Any]:
        return dict(self.objects[("communicationpools", namespace, name)].get("status") or {})

    def add_pool(self, namespace: str, name: str, tenant_id: str, pool_rt_id: str) -> None:
        self.objects[("communicationpools", namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"tenantId": tenant_id, "poolRtId": pool_rt_id},
        }


class CountingWorkloads:
    """A :class:`~communication_operator.pools.DeployedWorkloadsSource` that counts its listings.

    Each listing takes ``delay`` seconds, like a request to the API server, so concurrent callers overlap.
    ``failures`` makes the next N listings raise.
    """

    def __init__(
        self, by_pool: dict[tuple[str, str], list[str]] | None = None, *, delay: float = 0.0
    ) -> None:
        self.by_pool = by_pool or {}
        self.delay = delay
        self.listings = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.failures = 0

    async def workload_rt_ids_by_pool(self) -> dict[tuple[str, str], list[str]]:
        self.listings += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.failures:
                self.failures -= 1
                raise RuntimeError("API server unavailable")
            return {key: list(ids) for key, ids in self.by_pool.items()}
        finally:
            self.in_flight -= 1
