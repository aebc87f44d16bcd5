"""Pydantic models of the operator hub DTOs, serialised exactly as ASP.NET Core's JSON hub protocol does.

System.Text.Json with the SignalR defaults writes camelCase names, reads names case-insensitively,
ignores unknown properties and writes ``null`` for null values. Enums have no string converter, so
they travel as integers. C# records default non-nullable strings to ``""`` and collections to empty;
an explicit JSON ``null`` for such a property is read here as that default (the controller treats
both alike with ``string.IsNullOrEmpty``). Types are strict: ``"1"`` is not a number and ``1`` is not
a string, as in System.Text.Json without ``AllowReadingFromString``.
"""

from __future__ import annotations

from enum import IntEnum
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class WorkloadType(IntEnum):
    ADAPTER = 0
    APPLICATION = 1
    ADAPTER_POOL = 2  # later contract (AB#: adapter pools): installed into the platform namespace


class CommunicationState(IntEnum):
    UNREGISTERED = 0
    ONLINE = 1
    OFFLINE = 2


class DeploymentState(IntEnum):
    """``EntityDeploymentState`` of pools and workloads (``Disabled`` value inferred, see octo-spec §2.2)."""

    UNDEPLOYED = 0
    PENDING = 1
    DEPLOYED = 2
    ERROR = 3
    DISABLED = 4


class PoolEnvironment(IntEnum):
    EDGE = 0
    CLOUD = 1


def _enum_from_int(enum: type[IntEnum], value: Any) -> Any:
    """Integers (not bools, not strings) become the enum; System.Text.Json also accepts undefined values,
    but an operator cannot act on a workload type it does not know, so those fail validation."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return enum(value)
        except ValueError:
            return value
    return value


# An integer on the wire (System.Text.Json has no enum string converter configured).
WireWorkloadType = Annotated[WorkloadType, BeforeValidator(lambda value: _enum_from_int(WorkloadType, value))]


class WireModel(BaseModel):
    """Base of every DTO: camelCase aliases, case-insensitive read, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        strict=True,
        frozen=True,
    )

    # Fields whose C# type is a non-nullable string or collection: JSON null reads as the default.
    _null_as_default: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _match_names_case_insensitively(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        by_folded = _names_by_folded_key(cls)
        normalised: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                continue
            match = by_folded.get(key.casefold())
            if match is None:
                continue  # a newer controller's field: ignored, as System.Text.Json does
            alias, name = match
            if value is None and cls._is_non_nullable_with_default(name):
                continue
            normalised[alias] = value
        return normalised

    @classmethod
    def _is_non_nullable_with_default(cls, name: str) -> bool:
        """True for C# ``string`` and collection properties (not ``string?``, not value types)."""
        annotation = cls.model_fields[name].annotation
        return annotation is str or getattr(annotation, "__origin__", None) is list

    def to_wire(self) -> dict[str, Any]:
        """The JSON object as the controller's serializer would write it."""
        return self.model_dump(mode="json", by_alias=True)


class DeployedPoolDto(WireModel):
    tenant_id: str = ""
    pool_rt_id: str = ""


class OperatorDeployedPoolReportDto(WireModel):
    tenant_id: str = ""
    pool_rt_id: str = ""
    pool_name: str = ""
    workload_rt_ids: list[str] = Field(default_factory=list)


class ValueOverrideDto(WireModel):
    path: str = ""
    value: str = ""
    is_secret: bool = False


class WorkloadDeployedDto(WireModel):
    tenant_id: str = ""
    pool_rt_id: str = ""
    workload_name: str = ""
    workload_rt_id: str = ""
    workload_type: WireWorkloadType = WorkloadType.ADAPTER
    repository_url: str = ""
    repository_username: str | None = None
    repository_password: str | None = Field(default=None, repr=False)
    chart_name: str = ""
    chart_version: str = ""
    is_reconciliation: bool = False
    values_yaml: str = Field(default="", repr=False)
    values: list[ValueOverrideDto] = Field(default_factory=list, repr=False)
    receives_cluster_secrets: bool = False
    ingress_enabled: bool = False
    hostname: str | None = None
    hibernated: bool = False


class WorkloadUndeployedDto(WireModel):
    tenant_id: str = ""
    pool_rt_id: str = ""
    workload_rt_id: str = ""
    workload_name: str = ""
    workload_type: WireWorkloadType = WorkloadType.ADAPTER


class WorkloadDeploymentStatusDto(WireModel):
    """Outcome of a deploy. ``poolName`` is the older contract's field; newer controllers ignore it."""

    tenant_id: str = ""
    pool_name: str = ""
    workload_name: str = ""
    workload_rt_id: str = ""
    success: bool = False
    status_message: str | None = None


class WorkloadDeploymentProgressDto(WireModel):
    tenant_id: str = ""
    workload_name: str = ""
    workload_rt_id: str = ""
    message: str = ""


class ScaleWorkloadDto(WireModel):
    tenant_id: str = ""
    pool_rt_id: str = ""
    workload_rt_id: str = ""
    workload_name: str = ""
    workload_type: WireWorkloadType = WorkloadType.ADAPTER
    replicas: int = 0


class WorkloadScaleStatusDto(WireModel):
    tenant_id: str = ""
    workload_rt_id: str = ""
    workload_name: str = ""
    replicas: int = 0
    success: bool = False
    status_message: str | None = None


@cache
def _names_by_folded_key(model: type[WireModel]) -> dict[str, tuple[str, str]]:
    """Folded JSON name (and Python name) → (alias, field name), computed once per model."""
    names: dict[str, tuple[str, str]] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        names[alias.casefold()] = (alias, name)
        names[name.casefold()] = (alias, name)  # Python-side construction by field name
    return names
