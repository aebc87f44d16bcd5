"""Finding known secret values and their encoded forms in a text: one pattern per secret set, then masking."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
#: Secrets at least this long are masked wherever they occur, with every encoded form.
MIN_ANYWHERE_LENGTH = 8
#: Shorter secrets (down to this length) are masked only as whole tokens; below it, never by value.
MIN_TOKEN_LENGTH = 3
#: A base64 fragment shorter than this is too unspecific to look for inside a longer blob.
MIN_ENCODED_LENGTH = 6

_WORD = r"\w"
_BASE64_WORD = r"[A-Za-z0-9+/=_-]"


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
