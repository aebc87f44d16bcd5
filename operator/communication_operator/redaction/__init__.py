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

The parts: :mod:`.patterns` (by value), :mod:`.structure` (by shape), :mod:`.known` (the process's
registry), :mod:`.bounds` (cutting). Each imports only the standard library and its siblings; this
module joins them (:func:`redact`, :func:`redact_and_bound`) and is the one import point for the rest
of the operator, so the package stays a leaf that every layer may use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from communication_operator.redaction.bounds import ELLIPSIS, truncate_end, truncate_middle
from communication_operator.redaction.known import (
    KNOWN_SECRETS,
    MAX_KNOWN_SECRETS,
    KnownSecrets,
    remember_secrets,
)
from communication_operator.redaction.patterns import (
    MASK,
    MIN_ANYWHERE_LENGTH,
    MIN_ENCODED_LENGTH,
    MIN_TOKEN_LENGTH,
    encoded_forms,
    escaped_forms,
    mask_matches,
    secret_pattern,
)
from communication_operator.redaction.structure import (
    describe_url,
    mask_url_credentials,
    redact_structure,
    redact_url_tokens,
    url_passwords,
)

__all__ = [
    "ELLIPSIS",
    "KNOWN_SECRETS",
    "MASK",
    "MAX_KNOWN_SECRETS",
    "MIN_ANYWHERE_LENGTH",
    "MIN_ENCODED_LENGTH",
    "MIN_TOKEN_LENGTH",
    "KnownSecrets",
    "describe_url",
    "encoded_forms",
    "escaped_forms",
    "mask_matches",
    "mask_url_credentials",
    "redact",
    "redact_and_bound",
    "redact_url_tokens",
    "remember_secrets",
    "secret_pattern",
    "truncate_end",
    "truncate_middle",
    "url_passwords",
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret (and its encoded forms) and every structural credential masked."""
    if not text:
        return text
    pattern = _cached_pattern(frozenset(secrets))
    if pattern is not None:
        text = mask_matches(text, [pattern])
    return redact_structure(text)


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
