"""Hub method names of both directions and their argument layouts, in wire order.

The operator's server calls are ``IOperatorHub`` methods; the controller's pushes are
``IOperatorHubCallbacks``. Argument lists carry no ``poolName`` (removed upstream in r3.3.105).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError

from communication_operator.contracts.dtos import (
    DeployedPoolDto,
    OperatorDeployedPoolReportDto,
    ScaleWorkloadDto,
    WireModel,
    WorkloadDeployedDto,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
    WorkloadScaleStatusDto,
    WorkloadUndeployedDto,
)
from communication_operator.contracts.validation import (
    PushIds,
    id_problems,
    read_ids,
    validation_problems,
)


class ServerMethod(StrEnum):
    """Operator → controller (``IOperatorHub``)."""

    REGISTER_OPERATOR = "RegisterOperatorAsync"
    UNREGISTER_OPERATOR = "UnregisterOperatorAsync"
    REPORT_DEPLOYED_STATE = "ReportDeployedStateAsync"
    REPORT_WORKLOAD_DEPLOYMENT_STATUS = "ReportWorkloadDeploymentStatusAsync"
    REPORT_WORKLOAD_DEPLOYMENT_PROGRESS = "ReportWorkloadDeploymentProgressAsync"
    REGISTER_POOL = "RegisterPoolAsync"
    UNREGISTER_POOL = "UnregisterPoolAsync"
    REPORT_WORKLOAD_SCALE_STATUS = "ReportWorkloadScaleStatusAsync"


class ClientMethod(StrEnum):
    """Controller → operator pushes (``IOperatorHubCallbacks``)."""

    POOL_DEPLOYED = "PoolDeployedAsync"
    POOL_UNDEPLOYED = "PoolUndeployedAsync"
    WORKLOAD_DEPLOYED = "WorkloadDeployedAsync"
    WORKLOAD_UNDEPLOYED = "WorkloadUndeployedAsync"
    PRE_UPDATE_TENANT = "PreUpdateTenantAsync"
    SCALE_WORKLOAD = "ScaleWorkloadAsync"


@dataclass(frozen=True)
class MethodSignature:
    name: str
    parameters: tuple[tuple[str, Any], ...]
    returns: Any = None
    # A workload push: its tenant and runtime ids are validated too (contracts.validation).
    workload_push: bool = False

    @property
    def arity(self) -> int:
        return len(self.parameters)


class ContractError(ValueError):
    """A hub message whose arguments do not fit the contract; the text names method, argument and field."""


class InvalidPush(ContractError):
    """A workload push that fails validation: ``problems`` name each fault, ``ids`` hold what was readable
    (the workloads front decides whether a failed status can be reported)."""

    def __init__(self, method: str, problems: list[str], ids: PushIds) -> None:
        self.method = method
        self.problems = tuple(problems) or ("invalid push",)
        self.ids = ids
        super().__init__(f"{method}: {'; '.join(self.problems)}")


_STRICT_STR = TypeAdapter(str, config={"strict": True})

SERVER_METHODS: dict[str, MethodSignature] = {
    sig.name: sig
    for sig in (
        MethodSignature(
            ServerMethod.REGISTER_OPERATOR, (("autoManagePools", bool | None),), list[DeployedPoolDto]
        ),
        MethodSignature(ServerMethod.UNREGISTER_OPERATOR, ()),
        MethodSignature(
            ServerMethod.REPORT_DEPLOYED_STATE, (("deployedPools", list[OperatorDeployedPoolReportDto]),)
        ),
        MethodSignature(
            ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS, (("status", WorkloadDeploymentStatusDto),)
        ),
        MethodSignature(
            ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_PROGRESS, (("progress", WorkloadDeploymentProgressDto),)
        ),
        MethodSignature(ServerMethod.REGISTER_POOL, (("tenantId", str), ("poolRtId", str))),
        MethodSignature(ServerMethod.UNREGISTER_POOL, (("tenantId", str), ("poolRtId", str))),
        MethodSignature(ServerMethod.REPORT_WORKLOAD_SCALE_STATUS, (("status", WorkloadScaleStatusDto),)),
    )
}

CLIENT_METHODS: dict[str, MethodSignature] = {
    sig.name: sig
    for sig in (
        MethodSignature(ClientMethod.POOL_DEPLOYED, (("pool", DeployedPoolDto),)),
        MethodSignature(ClientMethod.POOL_UNDEPLOYED, (("tenantId", str), ("poolRtId", str))),
        MethodSignature(
            ClientMethod.WORKLOAD_DEPLOYED, (("workload", WorkloadDeployedDto),), workload_push=True
        ),
        MethodSignature(
            ClientMethod.WORKLOAD_UNDEPLOYED, (("workload", WorkloadUndeployedDto),), workload_push=True
        ),
        MethodSignature(ClientMethod.PRE_UPDATE_TENANT, (("tenantId", str),)),
        MethodSignature(ClientMethod.SCALE_WORKLOAD, (("scale", ScaleWorkloadDto),), workload_push=True),
    )
}

_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(annotation)
    if adapter is None:
        config = None if _is_model_or_list_of_models(annotation) else {"strict": True}
        adapter = TypeAdapter(annotation, config=config)  # type: ignore[arg-type]
        _ADAPTERS[annotation] = adapter
    return adapter


def _is_model_or_list_of_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, WireModel):
        return True
    args = getattr(annotation, "__args__", ())
    return any(isinstance(a, type) and issubclass(a, WireModel) for a in args)


def signature_of(method: str, table: dict[str, MethodSignature]) -> MethodSignature:
    """Look a method up case-insensitively, as the .NET dispatcher does."""
    sig = table.get(method)
    if sig is not None:
        return sig
    folded = method.casefold()
    for name, candidate in table.items():
        if name.casefold() == folded:
            return candidate
    raise ContractError(f"unknown hub method '{method}'")


def decode_arguments(method: str, arguments: Any, table: dict[str, MethodSignature]) -> list[Any]:
    """Validate raw JSON arguments of ``method`` into Python values (DTO models, str, bool, ...)."""
    sig = signature_of(method, table)
    if not isinstance(arguments, list):
        raise ContractError(f"{sig.name}: arguments must be a JSON array, got {type(arguments).__name__}")
    if len(arguments) != sig.arity:
        problem = f"expected {sig.arity} argument(s), got {len(arguments)}"
        if sig.workload_push and arguments:
            # The workload may still be named by the first argument: let the front report it failed.
            raise InvalidPush(sig.name, [problem], read_ids(arguments[0]))
        raise ContractError(f"{sig.name}: {problem}")
    decoded = []
    for (name, annotation), raw in zip(sig.parameters, arguments, strict=True):
        try:
            value = _adapter(annotation).validate_python(raw)
        except ValidationError as exc:
            if sig.workload_push:
                ids = read_ids(raw)
                raise InvalidPush(sig.name, id_problems(ids, raw) + validation_problems(exc), ids) from None
            raise ContractError(f"{sig.name}: argument '{name}': {_describe(exc)}") from None
        if sig.workload_push:
            ids = read_ids(raw)
            if problems := id_problems(ids, raw):
                raise InvalidPush(sig.name, problems, ids)
        decoded.append(value)
    return decoded


def decode_result(method: str, result: Any) -> Any:
    """Validate a server method's completion result (``None`` for void methods)."""
    sig = signature_of(method, SERVER_METHODS)
    if sig.returns is None:
        return None
    try:
        return _adapter(sig.returns).validate_python(result)
    except ValidationError as exc:
        raise ContractError(f"{sig.name}: result: {_describe(exc)}") from None


def check_arity(
    method: str, args: tuple[Any, ...], table: dict[str, MethodSignature] = SERVER_METHODS
) -> MethodSignature:
    sig = signature_of(method, table)
    if len(args) != sig.arity:
        raise ContractError(f"{sig.name}: expected {sig.arity} argument(s), got {len(args)}")
    return sig


def encode_arguments(
    method: str, *args: Any, table: dict[str, MethodSignature] = SERVER_METHODS
) -> list[Any]:
    """Check arity and turn DTOs into their wire JSON, in the method's argument order."""
    check_arity(method, args, table)
    return [_to_json(a) for a in args]


def _to_json(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(p) for p in err["loc"]) or "(value)"
        parts.append(f"field '{location}': {err['msg']}")
    return "; ".join(parts)
