"""Reports that fit the controller's message limit: ids intact, free text shortened.

ASP.NET Core SignalR closes a connection whose message exceeds ``MaximumReceiveMessageSize`` (32 KB by
default; the operator keeps to that default, ``HubOptions.max_message_bytes``), so a report over it can
never be delivered. The controller finds a workload by ``tenantId`` and ``workloadRtId``; names and
messages are for people. :func:`fit_arguments` therefore returns arguments whose JSON fits ``budget``
bytes:

1. characters UTF-8 cannot carry (lone surrogates, which JSON may escape) become U+FFFD, everywhere;
2. display names (``workloadName``, ``poolName``) over :data:`DISPLAY_NAME_LIMIT` characters are cut;
3. free text (``statusMessage``, ``message``) is cut in the middle to what is left;
4. names are cut further if the ids and the shortest text still do not fit.

Ids are never changed beyond step 1: a report whose ids alone exceed the budget stays too large, and
the hub drops it with a log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from communication_operator.contracts.dtos import WireModel

DISPLAY_NAME_LIMIT = 256
DISPLAY_FIELDS = ("workload_name", "pool_name")
TEXT_FIELDS = ("status_message", "message")
REPLACEMENT_CHARACTER = "\ufffd"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Marks where a text was cut; the count is of characters removed.
CUT_MARKER = " … [{count} characters omitted] … "


@dataclass(frozen=True)
class Fitted:
    arguments: tuple[Any, ...]
    shortened: tuple[str, ...] = ()  # wire names of the fields that were cut
    size: int = 0  # bytes of the arguments' JSON array afterwards


def encoded_size(arguments: Sequence[Any]) -> int:
    """Bytes of the arguments' JSON array as the hub writes it (compact, UTF-8)."""
    wire = [_to_wire(argument) for argument in arguments]
    return len(json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def fit_arguments(arguments: Sequence[Any], budget: int) -> Fitted:
    """``arguments`` made encodable and, where needed, shortened so their JSON takes ``budget`` bytes."""
    current = [_sanitised(argument) for argument in arguments]
    shortened: list[str] = []
    size = encoded_size(current)
    if size <= budget:
        return Fitted(tuple(current), (), size)
    # (fields, cap): cap names at DISPLAY_NAME_LIMIT whatever the excess; else cut by the excess.
    steps: tuple[tuple[tuple[str, ...], int | None], ...] = (
        (DISPLAY_FIELDS, DISPLAY_NAME_LIMIT),
        (TEXT_FIELDS, None),
        (DISPLAY_FIELDS, None),
    )
    for fields, cap in steps:
        for index, name, value in _text_fields(current, fields):
            excess = size - budget
            if excess <= 0:
                break
            current_bytes = _json_bytes(value)
            limit = current_bytes - excess if cap is None else _json_bytes(value[:cap])
            cut = _cut_to_bytes(value, limit)
            if cut == value:
                continue
            current[index] = current[index].model_copy(update={name: cut})
            shortened.append(_wire_name(current[index], name))
            size = encoded_size(current)
    return Fitted(tuple(current), tuple(dict.fromkeys(shortened)), size)


def _text_fields(arguments: list[Any], fields: Sequence[str]) -> Iterator[tuple[int, str, str]]:
    """(argument index, field name, value) of the given string fields, longest first."""
    found = [
        (index, name, getattr(argument, name))
        for index, argument in enumerate(arguments)
        if isinstance(argument, WireModel)
        for name in fields
        if isinstance(getattr(argument, name, None), str)
    ]
    return iter(sorted(found, key=lambda item: -len(item[2])))


def _cut_to_bytes(text: str, limit: int) -> str:
    """``text`` with its middle replaced by :data:`CUT_MARKER` so its JSON string takes ``limit`` bytes
    at most (empty when not even the marker fits); unchanged when it fits already."""
    if _json_bytes(text) <= limit:
        return text
    low, high = 0, len(text) - 1  # characters kept
    best = ""
    while low <= high:
        keep = (low + high) // 2
        candidate = _middle_cut(text, keep)
        if _json_bytes(candidate) <= limit:
            best, low = candidate, keep + 1
        else:
            high = keep - 1
    return best


def _middle_cut(text: str, keep: int) -> str:
    head = (keep + 1) // 2
    return text[:head] + CUT_MARKER.format(count=len(text) - keep) + text[len(text) - (keep - head) :]


def _json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", errors="replace"))


def _sanitised(value: Any) -> Any:
    """``value`` with lone surrogates replaced, deeply; the same object when nothing changed."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub(REPLACEMENT_CHARACTER, value)
    if isinstance(value, WireModel):
        update = {}
        for name in type(value).model_fields:
            field = getattr(value, name)
            clean = _sanitised(field)
            if clean is not field and clean != field:
                update[name] = clean
        return value.model_copy(update=update) if update else value
    if isinstance(value, list | tuple):
        items = [_sanitised(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    return value


def _to_wire(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list | tuple):
        return [_to_wire(item) for item in value]
    return value


def _wire_name(model: WireModel, name: str) -> str:
    return type(model).model_fields[name].alias or name
