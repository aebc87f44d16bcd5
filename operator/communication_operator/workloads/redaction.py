"""Keeping secrets out of logs, progress reports and status messages.

:func:`redact` replaces, with ``***``:

* every known secret value of at least :data:`MIN_SECRET_LENGTH` characters wherever it occurs,
  and its base64 forms (standard and URL-safe, padded or not, and the stable middle part of its
  encoding at each of the three byte offsets it can have inside a longer base64 blob, such as a
  ``.dockerconfigjson``) when that encoded part is at least :data:`MIN_ENCODED_LENGTH` long;
* secrets of exactly 3 characters only where they stand as a whole token (not inside a word), and
  secrets of 1 or 2 characters never by value: replacing every ``a`` or ``42`` in a text would destroy
  it and tell a reader the secret anyway. Such values are still hidden where they appear in one of
  the structural forms below;
* structural forms regardless of the secret list: the password in URL user-info
  (``https://user:pass@host``), the value after ``--password``/``--token``-like options,
  ``Authorization: Bearer|Basic …`` headers, and ``password=…``/``"password": "…"``-like pairs.

Redact before cutting a text down (:func:`truncate_middle`), or a cut secret escapes the search.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

MASK = "***"
MIN_SECRET_LENGTH = 4
MIN_ENCODED_LENGTH = 6

_URL_USERINFO_PASSWORD = re.compile(r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)[^\s@/]+(?=@)")
_OPTION_VALUE = re.compile(
    r"(?P<keep>--(?:password|passwd|pass|token|access-token|client-secret|secret|api-key)(?:=|\s+))"
    r"(?!-)(?P<value>\"[^\"]*\"|'[^']*'|\S+)",
    re.IGNORECASE,
)
_AUTHORIZATION = re.compile(
    r"(?P<keep>\b(?:proxy-)?authorization\b\s*[:=]\s*(?:(?:bearer|basic|token|digest)\s+)?)[^\s,;\"']+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<keep>\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<keep>[\"']?\b(?:password|passwd|pwd|client[_-]?secret|api[_-]?key|access[_-]?token)[\"']?"
    r"\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)",
    re.IGNORECASE,
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret (and its base64 forms) and every structural credential masked."""
    if not text:
        return text
    patterns = _secret_patterns(secrets)
    if patterns is not None:
        text = patterns.sub(MASK, text)
    text = _URL_USERINFO_PASSWORD.sub(lambda m: m["keep"] + MASK, text)
    text = _AUTHORIZATION.sub(lambda m: m["keep"] + MASK, text)
    text = _BEARER.sub(lambda m: m["keep"] + MASK, text)
    text = _OPTION_VALUE.sub(lambda m: m["keep"] + _mask_keeping_quotes(m["value"]), text)
    text = _KEY_VALUE.sub(lambda m: m["keep"] + _mask_keeping_quotes(m["value"]), text)
    return text


def truncate_middle(text: str, limit: int, *, separator: str = "\n") -> str:
    """``text`` cut to at most ``limit`` characters by dropping its middle, marked with the count dropped.

    The start (usually the error) and the end (usually the latest diagnostics) are both kept. The
    marker stands on its own line; pass ``separator=" "`` to keep a one-line text on one line.
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    if len(text) <= limit:
        return text
    dropped = len(text) - limit
    while True:
        marker = f"{separator}… [{dropped} characters omitted] …{separator}"
        room = limit - len(marker)
        if room < 2:
            return text[:limit]
        if len(text) - room == dropped:
            break
        dropped = len(text) - room
    head = (room + 1) // 2
    return text[:head] + marker + text[len(text) - (room - head) :]


def encoded_forms(secret: str) -> set[str]:
    """The base64 strings (long enough to be specific) that reveal ``secret`` when decoded."""
    raw = secret.encode("utf-8")
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms.update((whole, whole.rstrip("=")))
        for offset in range(3):
            encoded = encode(b"\0" * offset + raw).decode("ascii").rstrip("=")
            # Only characters built from the secret's bits alone are the same in any surrounding blob.
            start = -(-8 * offset // 6)
            end = (8 * (offset + len(raw))) // 6
            forms.add(encoded[start:end])
    return {form for form in forms if len(form) >= MIN_ENCODED_LENGTH}


def _secret_patterns(secrets: Iterable[str]) -> re.Pattern[str] | None:
    anywhere: set[str] = set()
    whole_token: set[str] = set()
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            anywhere.add(secret)
            anywhere.update(encoded_forms(secret))
        elif len(secret) == MIN_SECRET_LENGTH - 1 and not secret.isspace():
            whole_token.add(secret)
    alternatives = [re.escape(s) for s in sorted(anywhere, key=len, reverse=True)]
    alternatives += [rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])" for s in sorted(whole_token)]
    if not alternatives:
        return None
    return re.compile("|".join(alternatives))


def _mask_keeping_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[0]
    return MASK
