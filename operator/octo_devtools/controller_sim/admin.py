"""Admin HTTP API under ``/admin``: what a user does in the controller's UI, plus inspection and faults.

No authentication (it is a test control surface). Errors answer ``{"error": "<message>"}`` with 400
(bad request body), 404 (unknown pool/workload) or 409 (the controller would refuse the action).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any, TypeVar

from aiohttp import web

from communication_operator.contracts import PoolEnvironment, ValueOverrideDto, WorkloadType
from octo_devtools.controller_sim.generations import SimulatedGeneration
from octo_devtools.controller_sim.hub import OperatorHub
from octo_devtools.controller_sim.state import AdminError, ControllerState, Workload, new_rt_id
from octo_devtools.controller_sim.views import render_state

logger = logging.getLogger(__name__)

FAULT_KINDS = (
    "drop",
    "close-error",
    "close-reconnect",
    "freeze",
    "thaw",
    "restart",
    "reject-auth",
    "accept-auth",
)

_E = TypeVar("_E", bound=IntEnum)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Fields of PATCH /admin/workloads/{id}: wire name → (Workload attribute, JSON type).
_EDITABLE: dict[str, tuple[str, type]] = {
    "name": ("name", str),
    "workloadType": ("workload_type", int),
    "repositoryUrl": ("repository_url", str),
    "repositoryUsername": ("repository_username", str),
    "repositoryPassword": ("repository_password", str),
    "chartName": ("chart_name", str),
    "chartVersion": ("chart_version", str),
    "valuesYaml": ("values_yaml", str),
    "values": ("values", list),
    "receivesClusterSecrets": ("receives_cluster_secrets", bool),
    "ingressEnabled": ("ingress_enabled", bool),
    "hostname": ("hostname", str),
    "hibernated": ("hibernated", bool),
}
_REQUIRED = frozenset({"name", "repositoryUrl", "chartName"})
_EMPTY = {"chartVersion": "", "valuesYaml": ""}  # what null becomes (the rest become null)


class _BadRequest(AdminError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = True, default: Any = None) -> Any:
    if name not in body or body[name] is None:
        if required:
            raise _BadRequest(f"'{name}' is required.")
        return default
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _BadRequest(f"'{name}' must be a {kind.__name__}, got {type(value).__name__}.")
    return value


def _enum(body: dict[str, Any], name: str, enum: type[_E]) -> _E:
    value = body.get(name)
    names = {member.name.replace("_", "").casefold(): member for member in enum}
    if isinstance(value, str) and value.casefold() in names:
        return names[value.casefold()]
    if isinstance(value, int) and not isinstance(value, bool) and value in enum._value2member_map_:
        return enum(value)
    allowed = ", ".join(m.name.title().replace("_", "") for m in enum)
    raise _BadRequest(f"'{name}' must be one of {allowed} (or its number), got {value!r}.")


def _values(body: dict[str, Any]) -> list[ValueOverrideDto]:
    raw = _field(body, "values", list, required=False, default=[])
    result = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _BadRequest(f"'values[{index}]' must be an object with path, value and isSecret.")
        result.append(
            ValueOverrideDto(
                path=_field(item, "path", str),
                value=_field(item, "value", str),
                is_secret=_field(item, "isSecret", bool, required=False, default=False),
            )
        )
    return result


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError as exc:
        raise _BadRequest(f"The request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("The request body must be a JSON object.")
    return body


class AdminApi:
    def __init__(self, state: ControllerState, hub: OperatorHub, on_state_change: Callable[[], None]) -> None:
        self._state = state
        self._hub = hub
        self._on_state_change = on_state_change

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/admin/pools", self._guard(self.create_pool)),
            web.post("/admin/pools/{poolRtId}/deploy", self._guard(self.deploy_pool)),
            web.post("/admin/pools/{poolRtId}/undeploy", self._guard(self.undeploy_pool)),
            web.post("/admin/workloads", self._guard(self.create_workload)),
            web.post("/admin/workloads/{workloadRtId}/deploy", self._guard(self.deploy_workload)),
            web.post("/admin/workloads/{workloadRtId}/undeploy", self._guard(self.undeploy_workload)),
            web.post("/admin/workloads/{workloadRtId}/scale", self._guard(self.scale_workload)),
            web.post("/admin/tenants/{tenantId}/pre-update", self._guard(self.pre_update)),
            web.patch("/admin/workloads/{workloadRtId}", self._guard(self.update_workload)),
            web.post("/admin/push", self._guard(self.push)),
            web.post("/admin/raw", self._guard(self.raw)),
            web.get("/admin/state", self._guard(self.get_state)),
            web.get("/admin/calls", self._guard(self.get_calls)),
            web.get("/admin/completions", self._guard(self.get_completions)),
            web.post("/admin/faults", self._guard(self.fault)),
            web.post("/admin/contract", self._guard(self.set_contract)),
        ]

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except AdminError as exc:
                logger.info("admin %s %s refused (%d): %s", request.method, request.path, exc.status, exc)
                return web.json_response({"error": str(exc)}, status=exc.status)
            finally:
                # Deliver what the action caused, even when it failed half-way, and persist.
                self._hub.deliver(self._state.take_pushes())
            if request.method == "POST":
                self._on_state_change()
            return response

        return guarded

    async def create_pool(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        pool = self._state.create_pool(
            tenant_id=_field(body, "tenantId", str),
            name=_field(body, "name", str),
            environment=_enum(body, "environment", PoolEnvironment),
            pool_rt_id=_field(body, "poolRtId", str, required=False),
        )
        logger.info(
            "admin: created %s pool %s in tenant %s",
            pool.environment.name.title(),
            pool.pool_rt_id,
            pool.tenant_id,
        )
        return web.json_response({"poolRtId": pool.pool_rt_id})

    async def deploy_pool(self, request: web.Request) -> web.Response:
        self._state.deploy_pool(request.match_info["poolRtId"])
        return web.json_response({})

    async def undeploy_pool(self, request: web.Request) -> web.Response:
        self._state.undeploy_pool(request.match_info["poolRtId"])
        return web.json_response({})

    async def create_workload(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        workload = self._state.add_workload(
            Workload(
                tenant_id=_field(body, "tenantId", str),
                pool_rt_id=_field(body, "poolRtId", str),
                workload_rt_id=_field(body, "workloadRtId", str, required=False) or new_rt_id(),
                name=_field(body, "name", str),
                workload_type=_enum(body, "workloadType", WorkloadType),
                repository_url=_field(body, "repositoryUrl", str),
                repository_username=_field(body, "repositoryUsername", str, required=False),
                repository_password=_field(body, "repositoryPassword", str, required=False),
                chart_name=_field(body, "chartName", str),
                chart_version=_field(body, "chartVersion", str, required=False, default=""),
                values_yaml=_field(body, "valuesYaml", str, required=False, default=""),
                values=_values(body),
                receives_cluster_secrets=_field(
                    body, "receivesClusterSecrets", bool, required=False, default=False
                ),
                ingress_enabled=_field(body, "ingressEnabled", bool, required=False, default=False),
                hostname=_field(body, "hostname", str, required=False) or None,
                hibernated=_field(body, "hibernated", bool, required=False, default=False),
            )
        )
        logger.info("admin: created workload %s in pool %s", workload.workload_rt_id, workload.pool_rt_id)
        return web.json_response({"workloadRtId": workload.workload_rt_id})

    async def update_workload(self, request: web.Request) -> web.Response:
        """Edit a workload as the controller's UI does; the next deploy sends the new definition."""
        body = await _json_body(request)
        unknown = sorted(set(body) - set(_EDITABLE))
        if unknown:
            raise _BadRequest(f"Cannot change {', '.join(unknown)}; editable: {', '.join(_EDITABLE)}.")
        changes: dict[str, Any] = {}
        for name, (attribute, kind) in _EDITABLE.items():
            if name not in body:
                continue
            if name == "values":
                changes[attribute] = _values(body)
            elif name == "workloadType":
                changes[attribute] = _enum(body, name, WorkloadType)
            elif kind is str and name not in _REQUIRED:
                changes[attribute] = _field(body, name, str, required=False, default=_EMPTY.get(name))
            else:
                changes[attribute] = _field(body, name, kind)
        workload = self._state.update_workload(request.match_info["workloadRtId"], changes)
        logger.info("admin: changed %s of workload %s", ", ".join(sorted(body)), workload.workload_rt_id)
        return web.json_response({})

    async def deploy_workload(self, request: web.Request) -> web.Response:
        self._state.deploy_workload(request.match_info["workloadRtId"])
        return web.json_response({})

    async def undeploy_workload(self, request: web.Request) -> web.Response:
        self._state.undeploy_workload(request.match_info["workloadRtId"])
        return web.json_response({})

    async def scale_workload(self, request: web.Request) -> web.Response:
        replicas = _field(await _json_body(request), "replicas", int)
        self._state.scale_workload(request.match_info["workloadRtId"], replicas)
        return web.json_response({})

    async def pre_update(self, request: web.Request) -> web.Response:
        self._state.pre_update_tenant(request.match_info["tenantId"])
        return web.json_response({})

    async def push(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        target = _field(body, "target", str)
        arguments = _field(body, "arguments", list, required=False, default=[])
        self._state.push_raw(target, arguments)
        return web.json_response({"connections": len(self._state.connections)})

    async def raw(self, request: web.Request) -> web.Response:
        """Send ``records`` (texts, not JSON values) verbatim, each followed by the record separator, in one
        WebSocket frame to every open connection: malformed JSON, huge numbers, deep nesting. Or send
        ``text`` as the frame, byte for byte (records cut anywhere, a missing separator)."""
        body = await _json_body(request)
        if "text" in body:
            return web.json_response({"connections": self._hub.send_text(_field(body, "text", str))})
        records = _field(body, "records", list)
        if not all(isinstance(record, str) for record in records):
            raise _BadRequest("'records' must be a list of strings.")
        return web.json_response({"connections": self._hub.send_raw(records)})

    async def get_state(self, request: web.Request) -> web.Response:
        return web.json_response(render_state(self._state))

    async def get_calls(self, request: web.Request) -> web.Response:
        return web.json_response(self._hub.calls)

    async def get_completions(self, request: web.Request) -> web.Response:
        return web.json_response(self._hub.completions)

    async def set_contract(self, request: web.Request) -> web.Response:
        """Switch the generation, as a controller upgrade would: open connections see it at once."""
        contract = _field(await _json_body(request), "contract", str)
        if contract not in ("pools", "deploymentsites"):
            raise _BadRequest(f"'contract' must be pools or deploymentsites, got {contract!r}.")
        self._hub.generation = SimulatedGeneration(contract)
        logger.info("admin: the controller now speaks the %s contract", contract)
        return web.json_response({"contract": contract})

    async def fault(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        kind = _field(body, "kind", str)
        if kind not in FAULT_KINDS:
            raise _BadRequest(f"Unknown fault kind {kind!r}; known kinds: {', '.join(FAULT_KINDS)}.")
        handlers = self._hub.handler_tasks()
        affected = len(handlers)
        logger.info("admin: fault %s (%d open connections)", kind, affected)
        match kind:
            case "drop":
                self._hub.drop_all()
            case "close-error":
                self._hub.close_all(error="Connection closed with an error.")
            case "close-reconnect":
                self._hub.close_all(allow_reconnect=True)
            case "freeze":
                self._hub.freeze()
            case "thaw":
                self._hub.thaw()
            case "restart":
                self._hub.restart()
            case "reject-auth":
                self._hub.auth_rejected = True
            case "accept-auth":
                self._hub.auth_rejected = False
        if kind in ("drop", "close-error", "close-reconnect", "restart"):
            # Answer once the server has let go of the old sockets, so /admin/state is settled.
            await self._hub.wait_finished(handlers, timeout=3.0)
        return web.json_response({"kind": kind, "connections": affected})
