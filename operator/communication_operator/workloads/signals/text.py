"""Signals as text: a cluster text as one redacted line, and one signal as a line of a progress report."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from communication_operator.redaction import redact, truncate_middle
from communication_operator.workloads.signals.fields import as_str
from communication_operator.workloads.signals.model import Signal, SignalKind

_WHITESPACE = re.compile(r"\s+")


def clean_text(value: Any, secrets: Iterable[str] = ()) -> str:
    """A cluster text as one redacted line: redact, collapse whitespace, then redact again.

    Collapsing first would hide a secret that contains whitespace (a key's lines, a passphrase)
    from the search; redacting again catches a secret the cluster wrote with other whitespace.
    """
    text = as_str(value)
    if not text:
        return ""
    secret_list = list(secrets)
    collapsed = _WHITESPACE.sub(" ", redact(text, secret_list)).strip()
    collapsed_forms = [c for s in secret_list if (c := _WHITESPACE.sub(" ", s).strip()) and c != s]
    return redact(collapsed, [*secret_list, *collapsed_forms])


def describe(signal: Signal, *, limit: int = 600, secrets: Iterable[str] = ()) -> str:
    """One human-readable line, e.g. ``ImagePullBackOff: pod web-7d9f container web: Back-off …``.

    The texts are redacted of ``secrets`` before they are joined, and the line before it is cut.
    """
    secret_list = list(secrets)
    if secret_list:
        signal = dataclasses.replace(
            signal, message=redact(signal.message, secret_list), detail=redact(signal.detail, secret_list)
        )
    subject = (
        f"pod {signal.object_name}"
        if signal.object_kind == "Pod"
        else (f"{signal.object_kind.lower() or 'object'} {signal.object_name}")
    )
    if signal.container:
        subject += f" {'initContainer' if signal.init_container else 'container'} {signal.container}"
    notes = []
    if signal.kind is SignalKind.CRASH_LOOP_BACK_OFF:
        if signal.restart_count:
            notes.append(f"restarts: {signal.restart_count}")
        if signal.exit_code is not None:
            notes.append(f"last exit code {signal.exit_code}")
        if signal.termination_reason:
            notes.append(signal.termination_reason)
    elif signal.kind is SignalKind.CONTAINER_FAILED:
        notes.append(f"exit code {signal.exit_code}")
        if signal.restart_count:
            notes.append(f"restarts: {signal.restart_count}")
    elif signal.kind in (SignalKind.ERR_IMAGE_PULL, SignalKind.IMAGE_PULL_BACK_OFF):
        if signal.occurrences > 1:
            notes.append(f"failed pulls: {signal.occurrences}")
    elif signal.occurrences > 1:
        notes.append(f"seen {signal.occurrences} times")
    text = signal.message or "(no message)"
    if signal.detail and signal.detail not in text:
        text += f"; last error: {signal.detail}"
    if notes:
        text += f" ({', '.join(notes)})"
    line = redact(f"{signal.reason or signal.kind.value}: {subject}: {text}", secret_list)
    return truncate_middle(line, limit, separator=" ")
