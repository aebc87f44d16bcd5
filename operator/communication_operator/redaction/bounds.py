"""Cutting a text to a size: its start kept, or its middle dropped. Redact first (``redact_and_bound``)."""

from __future__ import annotations

#: Ends a text cut by :func:`truncate_end`.
ELLIPSIS = "…"


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
