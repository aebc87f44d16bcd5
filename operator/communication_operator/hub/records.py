"""A malformed record from the controller, shown safely: its shape, never its values.

A record the JSON parser rejects (broken syntax, a 5,000-digit number, arrays nested too deep) may be
a workload push carrying repository passwords and secret values, and its secrets cannot be known
without parsing it. The excerpt therefore keeps the structure (brackets, numbers, ``true``/``false``/
``null``, and the property and method names of the contract) and masks every other string and bare
word, then cuts, then escapes control characters, so it stays on one log line.
"""

from __future__ import annotations

import re
from functools import cache

from communication_operator.contracts import CLIENT_METHODS, SERVER_METHODS
from communication_operator.contracts.dtos import WireModel

EXCERPT_LIMIT = 200
MASK = "***"
# Strings shown as they are: the protocol's own names and the short ids that say what a push was about.
_PROTOCOL_NAMES = frozenset(
    {"type", "target", "arguments", "invocationId", "error", "result", "allowReconnect", "headers"}
)
_ID_KEYS = frozenset({"tenantid", "poolrtid", "workloadrtid", "invocationid", "target"})
_ID_VALUE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A string (also one cut off by the end of the record, even after a lone backslash), a bare word,
# whitespace, or any other single character.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*\\?(?:"|\Z)|[A-Za-z_][A-Za-z0-9_.-]*|\s+|.', re.DOTALL)
_LITERALS = frozenset({"true", "false", "null"})


def record_excerpt(record: str, limit: int = EXCERPT_LIMIT) -> str:
    """The masked, bounded, escaped form of ``record`` for a log line."""
    masked: list[str] = []
    key: str | None = None  # the property name a value follows, if the record reads that way
    after_colon = False  # a string here is a value, even one that reads like a property name
    for match in _TOKEN.finditer(record):
        token = match.group()
        if token.startswith('"'):
            content = token[1:-1] if len(token) > 1 and token.endswith('"') else token[1:]
            if not after_colon and content in _known_names():
                masked.append(token)
                key = content
                continue
            if key is not None and key.casefold() in _ID_KEYS and _ID_VALUE.fullmatch(content):
                masked.append(token)
            else:
                masked.append(f'"{MASK}"')
            key, after_colon = None, False
        elif token[0].isalpha() or token[0] == "_":
            masked.append(token if token in _LITERALS else MASK)
            key, after_colon = None, False
        else:
            masked.append(token)
            if token.strip() == ":":
                after_colon = True
            elif token.strip():
                key, after_colon = None, False
        if sum(map(len, masked)) > limit:
            break
    text = "".join(masked)
    if len(text) > limit:
        text = text[:limit] + f"… ({len(record)} characters in all)"
    return repr(text)[1:-1]


@cache
def _known_names() -> frozenset[str]:
    names = set(_PROTOCOL_NAMES) | set(CLIENT_METHODS) | set(SERVER_METHODS)
    for model in _wire_models(WireModel):
        for name, field in model.model_fields.items():
            names.add(field.alias or name)
    return frozenset(names)


def _wire_models(base: type[WireModel]) -> list[type[WireModel]]:
    found = []
    for model in base.__subclasses__():
        found.append(model)
        found.extend(_wire_models(model))
    return found
