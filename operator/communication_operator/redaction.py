"""Keeping secrets out of every text the operator emits: log lines, progress reports, status messages.

A leaf module (it imports nothing of ours), so the log formatters, the hub and the workloads share it.

:func:`redact` replaces with ``***``, by value (the rule for known secrets):

* a secret of at least :data:`MIN_ANYWHERE_LENGTH` characters wherever it occurs, together with its
  encoded forms (:func:`encoded_forms`): base64 (standard and URL-safe, padded or not, and the part of
  its encoding that stays the same inside a longer base64 blob such as a ``.dockerconfigjson``),
  percent-encoding, and the escaped forms JSON and Python's ``repr`` give it (``\\n``, ``\\u00e9``,
  ``\\xc3\\xa9``), which is how a library's debug line shows a request or response body;
* a secret of :data:`MIN_TOKEN_LENGTH` up to :data:`MIN_ANYWHERE_LENGTH` - 1 characters only as a whole
  token: not glued to a letter, digit or ``_`` on either side (its escaped forms likewise, its full
  base64 encodings only as a whole base64 word). A broker password ``secret`` is masked in
  ``password is secret`` but ``secrets.databaseUser`` stays readable;
* a secret of 1 or 2 characters never by value: replacing every ``a`` or ``42`` in a text would
  destroy it and tell a reader the secret anyway.

and by structure, whatever the secret list (so short and unknown secrets are hidden there too): the
password in URL user-info (:func:`mask_url_credentials`), the value after ``--password``/``--token``-like
options, ``Authorization: Bearer|Basic …`` headers, and ``password=…``/``"repositoryPassword": "…"``-like
pairs.

Redact before a text is cut (:func:`truncate_middle`, or :func:`redact_and_bound` for both), joined,
or has its whitespace normalised; otherwise a secret split or altered by that escapes the search.

Secrets known to the process (:data:`KNOWN_SECRETS`) are the log formatters' safety net: every log
line, ours or a library's, is redacted with all of them.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
#: Ends a text cut by :func:`truncate_end`.
ELLIPSIS = "…"
#: Secrets at least this long are masked wherever they occur, with every encoded form.
MIN_ANYWHERE_LENGTH = 8
#: Shorter secrets (down to this length) are masked only as whole tokens; below it, never by value.
MIN_TOKEN_LENGTH = 3
#: A base64 fragment shorter than this is too unspecific to look for inside a longer blob.
MIN_ENCODED_LENGTH = 6
#: How many distinct secrets :class:`KnownSecrets` keeps (the oldest go first beyond that).
MAX_KNOWN_SECRETS = 10_000

_WORD = r"\w"
_BASE64_WORD = r"[A-Za-z0-9+/=_-]"
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


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret (and its encoded forms) and every structural credential masked."""
    if not text:
        return text
    pattern = _cached_pattern(frozenset(secrets))
    if pattern is not None:
        text = mask_matches(text, [pattern])
    return _redact_structure(text)


@functools.lru_cache(maxsize=64)
def _cached_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    # A deploy redacts many texts with one secret set; building its pattern is the expensive part.
    return secret_pattern(secrets)


def redact_and_bound(
    text: str,
    limit: int,
    secrets: Iterable[str] = (),
    *,
    separator: str = "\n",
    keep_end: bool = True,
    marker: str = ELLIPSIS,
) -> str:
    """``text`` redacted (``secrets`` and every secret the process knows), then cut to ``limit``
    characters: the order that keeps a secret on a cut from escaping. Every cut of a text that may
    carry a secret goes through here.

    ``keep_end`` (the default) drops the middle (:func:`truncate_middle`, marker on ``separator``);
    otherwise the start is kept and ``marker`` ends the cut text (:func:`truncate_end`).
    """
    redacted = KNOWN_SECRETS.redact(redact(text, secrets))
    if keep_end:
        return truncate_middle(redacted, limit, separator=separator)
    return truncate_end(redacted, limit, marker=marker)


def _redact_structure(text: str) -> str:
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


# -- URLs ------------------------------------------------------------------------------------------


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
    return repr(_redact_structure(head + _mask_userinfo(rest)))


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


# -- secret values ---------------------------------------------------------------------------------


def encoded_forms(secret: str) -> set[str]:
    """The base64 strings (long enough to be specific) that reveal ``secret`` when decoded."""
    raw = secret.encode("utf-8")
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.update(_whole_base64(raw, encode))
        for offset in range(3):
            encoded = encode(b"\0" * offset + raw).decode("ascii").rstrip("=")
            # Only characters built from the secret's bits alone are the same in any surrounding blob.
            start = -(-8 * offset // 6)
            end = (8 * (offset + len(raw))) // 6
            forms.add(encoded[start:end])
    forms.update(escaped_forms(secret))
    return {form for form in forms if len(form) >= MIN_ENCODED_LENGTH and form != secret}


def escaped_forms(secret: str) -> set[str]:
    """How ``secret`` reads inside JSON, a Python ``repr`` of a str or of bytes, or a URL (not itself)."""
    as_json = json.dumps(secret)[1:-1]
    as_unicode_json = json.dumps(secret, ensure_ascii=False)[1:-1]
    forms = {
        as_json,
        as_unicode_json,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret, safe=""),
    }
    # A JSON body logged as a Python str or bytes: escaped twice.
    for text in (secret, as_json, as_unicode_json):
        forms.add(repr(text)[1:-1])
        forms.add(repr(text.encode("utf-8"))[2:-1])
    forms.discard(secret)
    return forms


def _whole_base64(raw: bytes, encode: Callable[[bytes], bytes]) -> set[str]:
    whole = encode(raw).decode("ascii")
    return {whole, whole.rstrip("=")}


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern finding every secret by the rules of this module (for :func:`mask_matches`), or
    None when none qualifies."""
    anywhere: set[str] = set()
    token: set[str] = set()
    base64_token: set[str] = set()
    for secret in secrets:
        if not secret or secret.isspace() or len(secret) < MIN_TOKEN_LENGTH:
            continue
        if len(secret) >= MIN_ANYWHERE_LENGTH:
            anywhere.add(secret)
            anywhere.update(encoded_forms(secret))
        else:
            token.add(secret)
            token.update(escaped_forms(secret))
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                base64_token.update(_whole_base64(secret.encode("utf-8"), encode))
    alternatives = []
    if anywhere:
        alternatives.append(_trie_regex(anywhere))
    if token:
        alternatives.append(rf"(?<!{_WORD})(?:{_trie_regex(token)})(?!{_WORD})")
    if base64_token:
        alternatives.append(rf"(?<!{_BASE64_WORD})(?:{_trie_regex(base64_token)})(?!{_BASE64_WORD})")
    if not alternatives:
        return None
    # Zero-width, the match in group 1: a match is found at every position, so overlapping secrets
    # are all found (mask_matches masks the union).
    return re.compile("(?=(" + "|".join(alternatives) + "))")


def mask_matches(text: str, patterns: Iterable[re.Pattern[str]]) -> str:
    """``text`` with the union of every match (group 1) of every :func:`secret_pattern` masked."""
    spans = sorted(match.span(1) for pattern in patterns for match in pattern.finditer(text))
    if not spans:
        return text
    parts: list[str] = []
    position = 0  # end of what is already in parts
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start < end:  # overlapping: one masked stretch
            end = max(end, next_end)
            continue
        parts += (text[position:start], MASK)
        position, (start, end) = end, (next_start, next_end)
    parts += (text[position:start], MASK, text[end:])
    return "".join(parts)


_Trie = dict[str, "_Trie"]
#: Branch points nested deeper than this (pathological secret sets) fall back to a flat alternation.
_MAX_TRIE_DEPTH = 100


class _TooDeep(Exception):
    pass


def _trie_regex(words: Iterable[str]) -> str:
    """An alternation of ``words`` as a prefix tree: matching costs the depth, not the word count.

    Chains without a branch become one literal run. At each branch the longer continuations are
    tried before ending there, so the longest word wins.
    """
    unique = set(words)
    trie: _Trie = {}
    end = ""  # the key marking "a word ends here" (no character is the empty string)
    for word in unique:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[end] = {}

    def build(node: _Trie, depth: int) -> str:
        if depth > _MAX_TRIE_DEPTH:
            raise _TooDeep
        branches = []
        for ch, child in sorted(node.items()):
            if ch == end:
                continue
            run = [ch]
            while len(child) == 1 and end not in child:
                (ch, child), *_ = child.items()
                run.append(ch)
            branches.append(re.escape("".join(run)) + build(child, depth + 1))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if end in node else body

    try:
        return build(trie, 0)
    except _TooDeep:
        return "|".join(re.escape(word) for word in sorted(unique, key=len, reverse=True))


def _mask_keeping_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[0]
    return MASK


# -- the process-wide safety net -------------------------------------------------------------------


class KnownSecrets:
    """Every secret the process has seen, for redacting text whose origin cannot name them (log lines).

    Thread-safe (an operator may log from several threads). Patterns are built lazily in generations:
    new secrets get a small pattern of their own, merged with the previous one once about as large, so
    a stream of deploys each bringing a new secret costs O(n log n) to compile, not O(n²), and a text
    is searched with O(log n) patterns. Beyond :data:`MAX_KNOWN_SECRETS` the oldest are forgotten.
    """

    def __init__(self, limit: int = MAX_KNOWN_SECRETS) -> None:
        self._limit = limit
        self._values: dict[str, None] = {}
        self._pending: list[str] = []
        # (secrets, pattern) per generation, oldest and largest first.
        self._generations: list[tuple[frozenset[str], re.Pattern[str] | None]] = []
        self._lock = threading.Lock()

    def remember(self, secrets: Iterable[str]) -> None:
        """Add ``secrets`` (empty and too-short values are ignored by :func:`redact`'s rules)."""
        with self._lock:
            for secret in secrets:
                if secret and secret not in self._values:
                    self._values[secret] = None
                    self._pending.append(secret)
            if len(self._values) > self._limit:
                while len(self._values) > self._limit:
                    del self._values[next(iter(self._values))]
                # Rebuild from what is kept (rare: only past the limit).
                self._pending = list(self._values)
                self._generations = []

    def forget_all(self) -> None:
        with self._lock:
            self._values.clear()
            self._pending = []
            self._generations = []

    def __len__(self) -> int:
        return len(self._values)

    def redact(self, text: str) -> str:
        """:func:`redact` with every known secret."""
        if not text:
            return text
        with self._lock:
            if self._pending:
                self._add_generation()
            patterns = [pattern for _, pattern in self._generations if pattern is not None]
        return _redact_structure(mask_matches(text, patterns))

    def _add_generation(self) -> None:
        secrets = frozenset(self._pending)
        self._pending = []
        while self._generations and len(self._generations[-1][0]) <= 2 * len(secrets):
            secrets |= self._generations.pop()[0]
        self._generations.append((secrets, secret_pattern(secrets)))


#: The process's known secrets; the log formatters redact every line with them.
KNOWN_SECRETS = KnownSecrets()


def remember_secrets(secrets: Iterable[str]) -> None:
    """Make ``secrets`` known to the log safety net for the rest of the process's life."""
    KNOWN_SECRETS.remember(secrets)


def truncate_end(text: str, limit: int, *, marker: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` characters, its start kept and ``marker`` at the end.
    Redact first (:func:`redact_and_bound`)."""
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    if len(text) <= limit:
        return text
    return text[: max(limit - len(marker), 0)] + marker[:limit]


def truncate_middle(text: str, limit: int, *, separator: str = "\n") -> str:
    """``text`` cut to at most ``limit`` characters by dropping its middle, marked with the count dropped.

    The start (usually the error) and the end (usually the latest diagnostics) are both kept. The
    marker stands on its own line; pass ``separator=" "`` to keep a one-line text on one line.
    Redact first (:func:`redact_and_bound`).
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
