"""Typed client of the simulator's admin API, for tests and scripts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from communication_operator.contracts import ValueOverrideDto

T = TypeVar("T")
State = dict[str, Any]


class AdminRequestError(Exception):
    """The admin API refused a request; ``status`` is the HTTP status, the text the server's reason."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {message}")
        self.status = status
        self.message = message


class AdminClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        async with self._session.request(method, self.base_url + path, json=body) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("error") if isinstance(payload, dict) else None
                raise AdminRequestError(method, path, response.status, message or str(payload))
            return payload

    # --- pools ----------------------------------------------------------------------------------

    async def create_pool(
        self, tenant_id: str, name: str, environment: str = "Cloud", *, pool_rt_id: str | None = None
    ) -> str:
        """Create a pool (``environment`` "Cloud" or "Edge"); returns its poolRtId."""
        body: dict[str, Any] = {"tenantId": tenant_id, "name": name, "environment": environment}
        if pool_rt_id is not None:
            body["poolRtId"] = pool_rt_id
        result = await self._request("POST", "/admin/pools", body)
        return str(result["poolRtId"])

    async def deploy_pool(self, pool_rt_id: str) -> None:
        await self._request("POST", f"/admin/pools/{pool_rt_id}/deploy")

    async def undeploy_pool(self, pool_rt_id: str) -> None:
        await self._request("POST", f"/admin/pools/{pool_rt_id}/undeploy")

    # --- workloads ------------------------------------------------------------------------------

    async def create_workload(
        self,
        tenant_id: str,
        pool_rt_id: str,
        name: str,
        *,
        repository_url: str,
        chart_name: str,
        workload_type: str | int = "Adapter",
        chart_version: str | None = None,
        repository_username: str | None = None,
        repository_password: str | None = None,
        values_yaml: str | None = None,
        values: list[ValueOverrideDto] | list[dict[str, Any]] | None = None,
        receives_cluster_secrets: bool = False,
        ingress_enabled: bool = False,
        hostname: str | None = None,
        workload_rt_id: str | None = None,
        hibernated: bool = False,
    ) -> str:
        """Create a workload in a pool; returns its workloadRtId. Nothing is sent until it is deployed."""
        body: dict[str, Any] = {
            "tenantId": tenant_id,
            "poolRtId": pool_rt_id,
            "name": name,
            "workloadType": workload_type,
            "repositoryUrl": repository_url,
            "chartName": chart_name,
            "chartVersion": chart_version,
            "repositoryUsername": repository_username,
            "repositoryPassword": repository_password,
            "valuesYaml": values_yaml,
            "values": [v.to_wire() if isinstance(v, ValueOverrideDto) else v for v in values or []],
            "receivesClusterSecrets": receives_cluster_secrets,
            "ingressEnabled": ingress_enabled,
            "hostname": hostname,
            "workloadRtId": workload_rt_id,
            "hibernated": hibernated,
        }
        result = await self._request("POST", "/admin/workloads", body)
        return str(result["workloadRtId"])

    async def update_workload(self, workload_rt_id: str, **fields: Any) -> None:
        """Change a workload's definition; ``fields`` use the wire names of :meth:`create_workload`'s
        body (``valuesYaml="..."``, ``values=[...]``, ``repositoryPassword=...``)."""
        values = fields.get("values")
        if values is not None:
            fields["values"] = [v.to_wire() if isinstance(v, ValueOverrideDto) else v for v in values]
        await self._request("PATCH", f"/admin/workloads/{workload_rt_id}", fields)

    async def deploy_workload(self, workload_rt_id: str) -> None:
        await self._request("POST", f"/admin/workloads/{workload_rt_id}/deploy")

    async def undeploy_workload(self, workload_rt_id: str) -> None:
        await self._request("POST", f"/admin/workloads/{workload_rt_id}/undeploy")

    async def scale_workload(self, workload_rt_id: str, replicas: int) -> None:
        """Send ``ScaleWorkloadAsync``; the ack shows in ``state()["scaleReports"]``."""
        await self._request("POST", f"/admin/workloads/{workload_rt_id}/scale", {"replicas": replicas})

    # --- broadcasts, raw pushes, faults ---------------------------------------------------------

    async def pre_update(self, tenant_id: str) -> None:
        await self._request("POST", f"/admin/tenants/{tenant_id}/pre-update")

    async def push(self, target: str, arguments: list[Any]) -> int:
        """Push any invocation to every open hub connection; returns how many connections were open."""
        result = await self._request("POST", "/admin/push", {"target": target, "arguments": arguments})
        return int(result["connections"])

    async def send_raw(self, *records: str) -> int:
        """Send texts verbatim as hub records (one frame) to every open connection; returns how many."""
        result = await self._request("POST", "/admin/raw", {"records": list(records)})
        return int(result["connections"])

    async def send_text(self, text: str) -> int:
        """Send ``text`` as one WebSocket Text frame, byte for byte (no record separator added)."""
        result = await self._request("POST", "/admin/raw", {"text": text})
        return int(result["connections"])

    async def deploys(self, workload_rt_id: str) -> list[dict[str, Any]]:
        """The per-deploy record of a workload: dispatches, reports, ``finalStatuses``,
        ``progressAfterFinal`` (see ``docs/controller-simulator.md``)."""
        return list((await self.workload(workload_rt_id))["deploys"])

    async def set_contract(self, contract: str) -> None:
        """Make the simulator speak ``pools`` or ``deploymentsites`` names (a controller upgrade)."""
        await self._request("POST", "/admin/contract", {"contract": contract})

    async def fault(self, kind: str) -> int:
        """Inject a fault (drop, close-error, close-reconnect, freeze, thaw, restart, reject-auth,
        accept-auth); returns how many connections were open."""
        result = await self._request("POST", "/admin/faults", {"kind": kind})
        return int(result["connections"])

    # --- inspection -----------------------------------------------------------------------------

    async def state(self) -> State:
        result: State = await self._request("GET", "/admin/state")
        return result

    async def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """Every hub invocation received so far, in order; optionally only those of one method."""
        result: list[dict[str, Any]] = await self._request("GET", "/admin/calls")
        return [c for c in result if method is None or c["method"] == method]

    async def completions(self) -> list[dict[str, Any]]:
        """Completions the clients sent (answers to invocations with an id, sent with :meth:`send_raw`):
        ``{connectionId, invocationId, error, time}``, in order."""
        result: list[dict[str, Any]] = await self._request("GET", "/admin/completions")
        return result

    async def wait_for_completion(self, invocation_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a client answered the invocation ``invocation_id``; returns its completion."""
        deadline = time.monotonic() + timeout
        while True:
            for completion in await self.completions():
                if completion["invocationId"] == invocation_id:
                    return completion
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for a completion of {invocation_id}"
                )
            await asyncio.sleep(0.05)

    async def pool(self, pool_rt_id: str) -> dict[str, Any]:
        for pool in (await self.state())["pools"]:
            if pool["poolRtId"] == pool_rt_id:
                return dict(pool)
        raise KeyError(f"pool {pool_rt_id} is not in the simulator state")

    async def workload(self, workload_rt_id: str) -> dict[str, Any]:
        for workload in (await self.state())["workloads"]:
            if workload["workloadRtId"] == workload_rt_id:
                return dict(workload)
        raise KeyError(f"workload {workload_rt_id} is not in the simulator state")

    async def wait_for(
        self,
        predicate: Callable[[State], T],
        timeout: float = 5.0,
        *,
        interval: float = 0.05,
        description: str | None = None,
    ) -> T:
        """Poll ``/admin/state`` until ``predicate(state)`` is truthy; returns that value.

        On timeout raises AssertionError naming ``description`` (or the predicate) and the last state.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = await self.state()
            value = predicate(state)
            if value:
                return value
            if time.monotonic() >= deadline:
                what = description or getattr(predicate, "__name__", repr(predicate))
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last state: {state}")
            await asyncio.sleep(interval)

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until ``method`` was invoked at least ``count`` times; returns the latest such call."""
        deadline = time.monotonic() + timeout
        while True:
            calls = await self.calls(method)
            if len(calls) >= count:
                return calls[-1]
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} call(s) of {method}; got {len(calls)}"
                )
            await asyncio.sleep(0.05)
