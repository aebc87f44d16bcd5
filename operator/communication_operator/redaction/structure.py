"""Masking credentials by their shape, whatever the secret list: URL passwords, options, headers, pairs.

The password in URL user-info (:func:`mask_url_credentials`), the value after ``--password``/``--token``-like
options, ``Authorization: Bearer|Basic …`` headers, and ``password=…``/``"repositoryPassword": "…"``-like
pairs. Short and unknown secrets are hidden there too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

from communication_operator.redaction.patterns import MASK

_URL_SCHEME = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://")
_WHITESPACE = re.compile(r"\s")
_TOKEN_IN_TEXT = re.compile(r"(access_token=)[^&\s'\"]+", re.IGNORECASE)
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
# A key that ends in one of these words (``password``, ``repositoryPassword``, ``access_token``); the
# start of the key is not matched (it stays as it is), which keeps the search linear.
_KEY_VALUE = re.compile(
    # (?=[pca]): one class test per position before the alternation (twice as fast on long texts).
    r"(?P<keep>(?=[pca])(?:password|passwd|pwd|client[_-]?secret|api[_-]?key|access[_-]?token)[\"']?"
    r"\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)",
    re.IGNORECASE,
)
#: Each structural rule with the lower-case words one of which a text must contain for it to apply:
#: a plain substring test skips the (slower) expression for almost every text.
_STRUCTURAL_RULES: tuple[tuple[re.Pattern[str], tuple[str, ...], bool], ...] = (
    (_AUTHORIZATION, ("authorization",), False),
    (_BEARER, ("bearer",), False),
    (_OPTION_VALUE, ("--",), True),
    (_KEY_VALUE, ("pass", "pwd", "secret", "key", "token"), True),
)


def redact_structure(text: str) -> str:
    """``text`` with every credential recognised by its shape masked (no secret list needed)."""
    if "://" in text:
        text = mask_url_credentials(text)
    lowered = text.lower()
    for pattern, triggers, quoted in _STRUCTURAL_RULES:
        if any(trigger in lowered for trigger in triggers):
            if quoted:
                text = pattern.sub(lambda m: m["keep"] + _mask_keeping_quotes(m["value"]), text)
            else:
                text = pattern.sub(lambda m: m["keep"] + MASK, text)
    return text


def mask_url_credentials(text: str) -> str:
    """Every URL in ``text`` with the password of its user-info replaced by ``***`` (user name kept).

    Also for URLs that do not parse: a URL runs to the next whitespace, its user-info to the last
    ``@`` of its authority, so a password with quotes or ``<`` stays inside. A password with an
    unescaped ``/``, ``?`` or ``#`` makes the authority end early (``https://bob:pa/ss@host`` reads as
    host ``bob`` with port ``pa``): a non-numeric "port" followed by an ``@`` later in the same word is
    masked up to that ``@``.
    """
    parts: list[str] = []
    position = 0
    for start, end in _url_password_spans(text):
        parts += (text[position:start], MASK)
        position = end
    return "".join(parts) + text[position:]


def _url_password_spans(text: str) -> Iterator[tuple[int, int]]:
    position = 0
    while match := _URL_SCHEME.search(text, position):
        start = match.end()
        stop = _WHITESPACE.search(text, start)
        span = _userinfo_password_span(text[start : stop.start() if stop else len(text)])
        if span is None:
            position = start
            continue
        yield start + span[0], start + span[1]
        position = start + span[1]  # the "@": later URLs in the same word are found too


def redact_url_tokens(text: str) -> str:
    """Mask the ``access_token`` query value (aiohttp puts the WebSocket URL, which carries the token,
    into some exception texts) and a password in URL user-info (a controller URI may carry one)."""
    return mask_url_credentials(_TOKEN_IN_TEXT.sub(r"\1***", text))


def describe_url(url: str) -> str:
    """``url`` quoted for an error message, its credentials masked even when it is not a valid URL."""
    match = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url)
    head, rest = (match.group(), url[match.end() :]) if match else ("", url)
    return repr(redact_structure(head + _mask_userinfo(rest)))


def url_passwords(url: str) -> frozenset[str]:
    """The user-info password of ``url`` (one URL, possibly malformed, whitespace and all), as written
    and percent-decoded; empty when it has none.

    For a secrets list when a URL's password is not known any other way (an invalid URL cannot be parsed).
    """
    match = re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*://", url)
    if match is None:
        return frozenset()
    rest = url[match.end() :]
    span = _userinfo_password_span(rest)
    if span is None:
        return frozenset()
    password = rest[span[0] : span[1]]
    return frozenset(value for value in (password, unquote(password)) if value)


def _mask_userinfo(rest: str) -> str:
    span = _userinfo_password_span(rest)
    if span is None:
        return rest
    return rest[: span[0]] + MASK + rest[span[1] :]


def _userinfo_password_span(rest: str) -> tuple[int, int] | None:
    """Where the password is in ``rest`` (a URL after ``scheme://``), or None when it has none."""
    authority_end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    authority = rest[:authority_end]
    at = authority.rfind("@")
    if at >= 0:
        colon = authority.find(":", 0, at)
        return (colon + 1, at) if colon >= 0 else None
    colon = authority.find(":")
    at = rest.rfind("@")
    if colon >= 0 and at > authority_end and not authority[colon + 1 :].isdigit():
        return colon + 1, at
    return None


def _mask_keeping_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[0]
    return MASK
