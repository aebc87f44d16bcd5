"""Validation of the controller's workload pushes beyond their JSON shape: ids and workload types.

Runtime ids (``workloadRtId``, ``poolRtId``) are MongoDB ObjectIds as the controller writes them: 24
lowercase hexadecimal characters (the CommunicationPool CRD's ``poolRtId`` pattern). A tenant id must
not be blank (the controller refuses an empty one); this operator also refuses one with control
characters or over :data:`TENANT_ID_MAX_LENGTH` characters (see docs/decisions/0002).

A push that fails raises :class:`~communication_operator.contracts.methods.InvalidPush`, which still
carries the ids that could be read (:class:`PushIds`), so the workloads front can report a failed
status to the controller instead of leaving the workload Pending.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from communication_operator.redaction import redact_and_bound

RT_ID_PATTERN = re.compile(r"[0-9a-f]{24}")
TENANT_ID_MAX_LENGTH = 128
#: An id longer than this cannot be used to report anything (and is shown cut in texts).
READABLE_ID_MAX_LENGTH = 256
#: Workload types of newer controllers that this operator does not deploy (yet), by number. AdapterPool
#: (2) is deployed since issue 10 (docs/workloads.md, "Adapter pools").
KNOWN_UNSUPPORTED_WORKLOAD_TYPES: dict[int, str] = {}

INVALID_RT_ID = "{field} {value} is not a runtime id (24 lowercase hexadecimal characters)"
BLANK_TENANT_ID = "tenantId is blank"
TENANT_ID_TOO_LONG = "tenantId is longer than {limit} characters"
TENANT_ID_CONTROL_CHARACTERS = "tenantId {value} contains control characters"
MISSING_FIELD = "{field} is missing"
UNSUPPORTED_WORKLOAD_TYPE = (
    "field 'workloadType': {value}{name} is not a workload type this operator deploys "
    "(supported: 0 Adapter, 1 Application, 2 AdapterPool)"
)
INVALID_FIELD = "field '{field}': {message}"
#: Ends the list of a push's problems past :data:`MAX_PROBLEMS` (a list of a thousand bad overrides).
MORE_PROBLEMS = "and {count} more problems"
MAX_PROBLEMS = 20

_SHOWN_VALUE_LIMIT = 40
#: Characters of a field's location (it may name a map's key, which comes from outside) in a problem.
_SHOWN_LOCATION_LIMIT = 100
# Control, format (bidi overrides, zero-width) and lone surrogates: never part of an identifier.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


@dataclass(frozen=True)
class PushIds:
    """The ids of a workload push as far as they could be read (``None``: absent or not a string)."""

    tenant_id: str | None = None
    pool_rt_id: str | None = None
    workload_rt_id: str | None = None
    workload_name: str | None = None

    @property
    def readable(self) -> bool:
        """True when a status naming this workload can be sent (the controller finds it by these)."""
        return all(
            value is not None and value.strip() != "" and len(value) <= READABLE_ID_MAX_LENGTH
            for value in (self.tenant_id, self.workload_rt_id)
        )


def read_ids(raw: Any) -> PushIds:
    """The id fields of a raw JSON object, matched case-insensitively as System.Text.Json does."""
    if not isinstance(raw, Mapping):
        return PushIds()
    folded = {key.casefold(): value for key, value in raw.items() if isinstance(key, str)}

    def text(name: str) -> str | None:
        value = folded.get(name.casefold())
        return value if isinstance(value, str) else None

    return PushIds(text("tenantId"), text("poolRtId"), text("workloadRtId"), text("workloadName"))


def id_problems(ids: PushIds, raw: Any = None) -> list[str]:
    """What is wrong with the ids of a workload push (empty when they are valid)."""
    problems = _tenant_problems(ids.tenant_id, raw)
    for field, value in (("poolRtId", ids.pool_rt_id), ("workloadRtId", ids.workload_rt_id)):
        if value is None:
            if raw is None or _is_absent(raw, field):
                problems.append(MISSING_FIELD.format(field=field))
        elif RT_ID_PATTERN.fullmatch(value) is None:
            problems.append(INVALID_RT_ID.format(field=field, value=show(value)))
    return problems


def validation_problems(error: ValidationError) -> list[str]:
    """Pydantic's complaints, one line per field, without the input values (they may be secret)."""
    problems = []
    for detail in error.errors(include_url=False):
        location = ".".join(str(part) for part in detail["loc"]) or "(value)"
        value = detail.get("input")
        if location == "workloadType" and isinstance(value, int) and not isinstance(value, bool):
            name = KNOWN_UNSUPPORTED_WORKLOAD_TYPES.get(value)
            problems.append(UNSUPPORTED_WORKLOAD_TYPE.format(value=value, name=f" ({name})" if name else ""))
        elif location in ("tenantId", "poolRtId", "workloadRtId") and value is None:
            continue  # reported by id_problems
        else:
            field = redact_and_bound(location, _SHOWN_LOCATION_LIMIT, keep_end=False)
            problems.append(INVALID_FIELD.format(field=field, message=detail["msg"]))
    if len(problems) > MAX_PROBLEMS:
        problems[MAX_PROBLEMS:] = [MORE_PROBLEMS.format(count=len(problems) - MAX_PROBLEMS)]
    return problems


def show(value: str) -> str:
    """A value for a message: redacted, quoted, control characters escaped, long ones cut."""
    shown = repr(redact_and_bound(value, _SHOWN_VALUE_LIMIT, keep_end=False, marker=""))
    return shown + f"… ({len(value)} characters)" if len(value) > _SHOWN_VALUE_LIMIT else shown


def _tenant_problems(tenant_id: str | None, raw: Any) -> list[str]:
    if tenant_id is None:
        return [MISSING_FIELD.format(field="tenantId")] if raw is None or _is_absent(raw, "tenantId") else []
    if not tenant_id.strip():
        return [BLANK_TENANT_ID]
    if len(tenant_id) > TENANT_ID_MAX_LENGTH:
        return [TENANT_ID_TOO_LONG.format(limit=TENANT_ID_MAX_LENGTH)]
    if any(unicodedata.category(character) in _CONTROL_CATEGORIES for character in tenant_id):
        return [TENANT_ID_CONTROL_CHARACTERS.format(value=show(tenant_id))]
    return []


def _is_absent(raw: Any, field: str) -> bool:
    """True when ``field`` is missing or null (a wrong type is pydantic's to report)."""
    if not isinstance(raw, Mapping):
        return True
    for key, value in raw.items():
        if isinstance(key, str) and key.casefold() == field.casefold():
            return value is None
    return True
