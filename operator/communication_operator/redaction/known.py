"""The secrets known to the process, in one registry: the log formatters' safety net."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from communication_operator.redaction.patterns import mask_matches, secret_pattern
from communication_operator.redaction.structure import redact_structure

#: How many distinct secrets :class:`KnownSecrets` keeps (the oldest go first beyond that).
MAX_KNOWN_SECRETS = 10_000


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
        return redact_structure(mask_matches(text, patterns))

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
