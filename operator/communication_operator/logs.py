"""Log formatting: one JSON object per line (the container default) or a readable line (a terminal).

Both formats carry the same context. Code that logs a state transition passes it with ``extra=``::

    log.info("deployed release %s", release, extra=log_context(tenant=t, workload=w, release=release))

and the formatters add each of :data:`CONTEXT_FIELDS` that the record has: as top-level JSON keys, or
as ``key=value`` after the text. kopf's per-object loggers attach ``k8s_ref`` (the object's kind,
namespace and name) instead; its ``namespace`` and ``name`` become the same context fields (and its
``kind`` a ``kind`` field), so kopf's lines about a CommunicationPool can be filtered like ours.

Secrets: callers redact what they log (helm output and status texts go through
:mod:`~communication_operator.redaction` with the deploy's known secrets). As a safety net every log
record of the process, ours or a library's (kubernetes-asyncio's ``response body`` at DEBUG, kopf,
aiohttp), is redacted when it is created (:func:`install_record_redaction`, so every handler gets the
redacted text, also kopf's Event poster) and again by the formatters: with every secret the process
knows (:data:`~communication_operator.redaction.KNOWN_SECRETS`, in all encoded forms) and the
structural rules (URL user-info passwords, ``--password`` options, ``Authorization`` headers,
``password=…`` pairs), in the message, the context values and the exception text.

The text format escapes control characters (``\\n``, ``\\r``, ``\\t``, ``\\x1b``, line separators) in
the message and in every context value, so a value from outside (a workload name with a newline)
cannot start a forged line; only the traceback, which follows the line, spans several lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from communication_operator.redaction import KNOWN_SECRETS

#: Context attributes the formatters look for on a record, in output order.
CONTEXT_FIELDS: Final = ("tenant", "pool", "workload", "release", "namespace", "name")

#: ``name`` is taken on a LogRecord (the logger's name), so that field travels as ``object_name``.
_RECORD_ATTRIBUTE: Final = {"name": "object_name"}

#: kopf's object reference attribute (``kopf._core.actions.loggers.ObjectLogger``).
KOPF_REF_ATTRIBUTE: Final = "k8s_ref"

TEXT_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

#: The lines of a traceback that are neither frames nor an exception's own text.
_TRACEBACK_HEADINGS: Final = frozenset(
    {
        "Traceback (most recent call last):\n",
        "\nDuring handling of the above exception, another exception occurred:\n\n",
        "\nThe above exception was the direct cause of the following exception:\n\n",
    }
)

#: Characters that would break a text-format line: C0/C1 controls, DEL and Unicode line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def log_context(**fields: object) -> dict[str, str]:
    """``extra=`` for a log call: the given context fields that are set, as strings.

    Rejects names outside :data:`CONTEXT_FIELDS`, so a typo cannot silently drop context. ``name``
    (an object's name) is stored as the record attribute ``object_name``: ``LogRecord`` has a ``name``.
    """
    unknown = sorted(set(fields) - set(CONTEXT_FIELDS))
    if unknown:
        raise ValueError(f"unknown log context field(s) {unknown}; known: {', '.join(CONTEXT_FIELDS)}")
    return {
        _RECORD_ATTRIBUTE.get(key, key): str(value)
        for key, value in fields.items()
        if value is not None and value != ""
    }


def record_context(record: logging.LogRecord) -> dict[str, str]:
    """The context of ``record``: fields passed with ``extra=``, then kopf's object reference."""
    context: dict[str, str] = {}
    ref = getattr(record, KOPF_REF_ATTRIBUTE, None)
    for key in CONTEXT_FIELDS:
        value = getattr(record, _RECORD_ATTRIBUTE.get(key, key), None)
        if value is None and isinstance(ref, Mapping) and key in ("namespace", "name"):
            value = ref.get(key)
        if value is not None and value != "":
            context[key] = KNOWN_SECRETS.redact(str(value))
    if isinstance(ref, Mapping) and ref.get("kind"):
        context["kind"] = str(ref["kind"])
    return context


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    # Formatted by this formatter, not taken from the record's cache (another formatter's text, which
    # for the text format would not escape the exception's message).
    if record.exc_info:
        return KNOWN_SECRETS.redact(formatter.formatException(record.exc_info))
    if record.exc_text:
        return KNOWN_SECRETS.redact(record.exc_text)
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``, context, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": KNOWN_SECRETS.redact(record.getMessage()),
        }
        entry.update(record_context(record))
        exception = _exception_text(self, record)
        if exception:
            entry["exception"] = exception
        if record.stack_info:
            entry["stack"] = KNOWN_SECRETS.redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-01-01 12:00:00,123 INFO    logger: message key=value …`` and the traceback below."""

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def formatException(self, ei: Any) -> str:
        """The traceback on the lines below, with control characters in each exception's message
        escaped: a message with a newline cannot start a line that looks like a log line.

        Each message is redacted before it is escaped: escaping changes a secret with a control
        character into a form the known secrets' encoded forms do not cover."""
        exc_type, exc, tb = ei
        parts = []
        for piece in traceback.TracebackException(exc_type, exc, tb).format():
            if piece.startswith(" ") or piece in _TRACEBACK_HEADINGS:
                parts.append(piece)  # frames and the fixed headings
            else:
                parts.append(escape_controls(KNOWN_SECRETS.redact(piece.removesuffix("\n"))) + "\n")
        return "".join(parts).removesuffix("\n")

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(KNOWN_SECRETS.redact(record.getMessage()))
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        context = record_context(record)
        if context:
            line += " " + " ".join(f"{key}={_quote(value)}" for key, value in context.items())
        exception = _exception_text(self, record)
        if exception:
            line += "\n" + exception
        if record.stack_info:
            line += "\n" + KNOWN_SECRETS.redact(self.formatStack(record.stack_info))
        return line


def escape_controls(text: str) -> str:
    """``text`` on one line: newlines, tabs and other control characters written as escapes."""
    return _CONTROL.sub(_escape_control, text)


def _escape_control(match: re.Match[str]) -> str:
    ch = match.group()
    return _CONTROL_ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def _quote(value: str) -> str:
    """A value as it reads unambiguously in ``key=value`` on one line (quoted when it has spaces, quotes
    or control characters, which JSON escapes)."""
    if value and not any(ch.isspace() or ch in "\"'=" for ch in value) and not _CONTROL.search(value):
        return value
    return escape_controls(json.dumps(value, ensure_ascii=False))


class _OperatorStreamHandler(logging.StreamHandler[TextIO]):
    """Marks the handler we install, so configuring twice replaces it instead of adding another."""


def install(formatter: logging.Formatter, level: int, stream: TextIO | None = None) -> logging.Handler:
    """Make ``formatter`` the root logger's only stream output, at ``level``.

    Handlers installed earlier by us or by ``kopf.configure`` are replaced; others (pytest's capture,
    kopf's Kubernetes-event poster on ``kopf.objects``) are left alone.
    """
    handler = _OperatorStreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [
        h
        for h in root.handlers
        if not isinstance(h, _OperatorStreamHandler) and type(h).__name__ != "_KopfStreamHandler"
    ]
    root.addHandler(handler)
    root.setLevel(level)
    install_record_redaction()
    return handler


def install_record_redaction() -> None:
    """Redact every log record of the process when it is created: the message with its arguments merged
    (``msg`` becomes the redacted text, ``args`` empty), so every handler sees only the redacted text.

    Installed once; records created before, or by a factory installed later, are still redacted by our
    formatters.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, _REDACTING_FACTORY, False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    setattr(redacting_factory, _REDACTING_FACTORY, True)
    logging.setLogRecordFactory(redacting_factory)


_REDACTING_FACTORY: Final = "_communication_operator_redacts"
_PLAIN: Final = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    """Replace the record's message with its redacted text, and set its exception and stack texts
    redacted (a message that cannot be formatted is left alone, so logging reports that error itself)."""
    try:
        message = record.getMessage()
    except Exception:  # logging's own error handling reports it when the record is emitted
        return
    record.msg = KNOWN_SECRETS.redact(message)
    record.args = None
    # Formatters use a record's cached exception text instead of formatting the exception again.
    if record.exc_info and not record.exc_text:
        record.exc_text = KNOWN_SECRETS.redact(_PLAIN.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = KNOWN_SECRETS.redact(record.stack_info)
