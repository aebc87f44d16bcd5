"""Log formatters: JSON lines and readable text with the same context; kopf's object lines; no secrets."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from communication_operator.cli import configure_logging
from communication_operator.logs import (
    CONTEXT_FIELDS,
    JsonFormatter,
    TextFormatter,
    log_context,
)
from communication_operator.redaction import KNOWN_SECRETS, redact, remember_secrets
from communication_operator.settings import Settings

CONTEXT = log_context(tenant="acme", pool="65f1" + "0" * 20, workload="w1", release="acme-w1")


def _record(
    message: str,
    *args: object,
    level: int = logging.INFO,
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
) -> logging.LogRecord:
    record = logging.LogRecord(
        "communication_operator.test", level, __file__, 1, message, args or None, exc_info
    )
    for key, value in (extra or {}).items():
        setattr(record, key, value)
    return record


def test_json_line_parses_and_carries_the_context() -> None:
    line = JsonFormatter().format(_record("deployed release %s", "acme-w1", extra=CONTEXT))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "deployed release acme-w1"
    assert entry["level"] == "info"
    assert entry["logger"] == "communication_operator.test"
    assert entry["time"].endswith("+00:00")
    assert {key: entry[key] for key in CONTEXT} == CONTEXT
    assert "exception" not in entry
    assert "namespace" not in entry  # absent context is left out, not null


def test_json_includes_the_exception_text_on_the_same_line() -> None:
    try:
        raise RuntimeError("helm exploded")
    except RuntimeError:
        import sys

        record = _record("deploy failed", level=logging.ERROR, exc_info=sys.exc_info(), extra=CONTEXT)
    line = JsonFormatter().format(record)
    assert line.count("\n") == 0
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert "Traceback" in entry["exception"]
    assert "RuntimeError: helm exploded" in entry["exception"]


def test_text_line_appends_the_context_as_key_value() -> None:
    record = _record("pool %s registered", "acme/65f1", extra={**CONTEXT, "namespace": "octo pools"})
    line = TextFormatter().format(record)
    head, _, tail = line.partition("communication_operator.test: ")
    assert "INFO" in head
    assert tail.startswith("pool acme/65f1 registered ")
    assert "tenant=acme" in tail
    assert "workload=w1" in tail
    assert "release=acme-w1" in tail
    assert 'namespace="octo pools"' in tail  # quoted because of the space
    # Context order is the documented one.
    positions = [tail.index(f"{key}=") for key in CONTEXT_FIELDS if f"{key}=" in tail]
    assert positions == sorted(positions)


def test_text_includes_the_traceback_below_the_line() -> None:
    try:
        raise ValueError("bad values")
    except ValueError:
        import sys

        record = _record("failed", level=logging.WARNING, exc_info=sys.exc_info())
    lines = TextFormatter().format(record).splitlines()
    assert "WARNING" in lines[0]
    assert lines[1].startswith("Traceback")
    assert lines[-1] == "ValueError: bad values"


def test_a_redacted_message_stays_secret_free_in_both_formats() -> None:
    secret = "s3cr3t-broker-pa55"
    message = redact(
        f"helm repo add failed for https://user:{secret}@charts.example --password {secret}", [secret]
    )
    for formatter in (JsonFormatter(), TextFormatter()):
        out = formatter.format(_record("%s", message, extra=CONTEXT))
        assert secret not in out
        assert "***" in out


def test_structural_credentials_are_masked_even_if_a_caller_forgot() -> None:
    leaky = (
        "connecting to https://octo:hunter2-long@controller.example with Authorization: Bearer abcdefgh12345"
    )
    for formatter in (JsonFormatter(), TextFormatter()):
        out = formatter.format(_record(leaky))
        assert "hunter2-long" not in out
        assert "abcdefgh12345" not in out


def test_log_context_rejects_unknown_fields_and_drops_empty_ones() -> None:
    assert log_context(tenant="acme", pool=None, release="") == {"tenant": "acme"}
    # An object's name rides as object_name (LogRecord.name is the logger's) and comes out as "name".
    assert log_context(name="site") == {"object_name": "site"}
    logging.getLogger("communication_operator.test").info("x", extra=log_context(name="site"))
    entry = json.loads(JsonFormatter().format(_record("x", extra=log_context(namespace="octo", name="site"))))
    assert (entry["namespace"], entry["name"], entry["logger"]) == (
        "octo",
        "site",
        "communication_operator.test",
    )
    with pytest.raises(ValueError, match="unknown log context field"):
        log_context(tennant="acme")


@pytest.fixture
def kopf_body() -> dict[str, Any]:
    return {
        "apiVersion": "octo-mesh.meshmakers.io/v1alpha1",
        "kind": "CommunicationPool",
        "metadata": {"name": "site", "namespace": "octo", "uid": "uid-1"},
    }


@pytest.fixture
def captured_root() -> Iterator[io.StringIO]:
    """configure_logging writes to this stream; the root logger is restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_json_formats_kopf_object_lines(
    kopf_body: dict[str, Any], captured_root: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPERATOR__LOG__FORMAT", "json")
    configure_logging(Settings(), captured_root)
    logger = kopf.ObjectLogger(body=kopf_body, settings=kopf.OperatorSettings())
    logger.info("Handler 'pool_created' succeeded.")
    logging.getLogger("communication_operator.pools").info("pool registered", extra=CONTEXT)
    lines = [json.loads(line) for line in captured_root.getvalue().splitlines()]
    kopf_line = next(line for line in lines if line["logger"] == "kopf.objects")
    assert kopf_line["message"] == "Handler 'pool_created' succeeded."
    assert (kopf_line["namespace"], kopf_line["name"], kopf_line["kind"]) == (
        "octo",
        "site",
        "CommunicationPool",
    )
    ours = next(line for line in lines if line["logger"] == "communication_operator.pools")
    assert ours["release"] == "acme-w1"
    # Exactly one handler of ours on the root logger, even when configured twice.
    configure_logging(Settings(), captured_root)
    ours_handlers = [h for h in logging.getLogger().handlers if type(h).__name__ == "_OperatorStreamHandler"]
    assert len(ours_handlers) == 1


def test_configure_logging_text_and_level(
    kopf_body: dict[str, Any], captured_root: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPERATOR__LOG__FORMAT", "text")
    monkeypatch.setenv("OPERATOR__LOG__LEVEL", "WARNING")
    configure_logging(Settings(), captured_root)
    logger = kopf.ObjectLogger(body=kopf_body, settings=kopf.OperatorSettings())
    logger.info("not shown at WARNING")
    logger.warning("Handler 'pool_created' failed temporarily")
    out = captured_root.getvalue()
    assert "not shown" not in out
    assert "Handler 'pool_created' failed temporarily namespace=octo name=site kind=CommunicationPool" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.splitlines()[0])


FORGED = "2026-01-01 00:00:00,000 ERROR   communication_operator.workloads.service: forged line"


@pytest.mark.parametrize("separator", ["\n", "\r", "\r\n", "\u2028", "\x85", "\x1b[2K\r"])
def test_text_format_cannot_be_forged_by_a_value_with_control_characters(separator: str) -> None:
    name = f"Mesh Adapter{separator}{FORGED}"
    record = _record(
        "deploying workload %s (%s)", "65f2", name, extra=log_context(workload=f"w1{separator}{FORGED}")
    )
    line = TextFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert not any(ch in line for ch in "\r\n\x1b\x85\u2028")
    assert "Mesh Adapter\\" in line  # escaped, still readable
    assert 'workload="w1\\' in line


def test_an_exception_message_cannot_forge_a_line_in_the_text_format() -> None:
    try:
        try:
            raise KeyError("first")
        except KeyError as first:
            raise ValueError(f"bad name Mesh\n{FORGED}\r\x1b[2K") from first
    except ValueError:
        import sys

        record = _record("deploy failed", level=logging.ERROR, exc_info=sys.exc_info())
    lines = TextFormatter().format(record).splitlines()
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert lines[-1] == f"ValueError: bad name Mesh\\n{FORGED}\\r\\x1b[2K"
    assert "KeyError: 'first'" in lines
    assert any(line.startswith("The above exception was the direct cause") for line in lines)


def test_text_format_keeps_the_traceback_on_the_following_lines() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = _record("failed for %s", "a\nb", exc_info=sys.exc_info())
    lines = TextFormatter().format(record).splitlines()
    assert lines[0].endswith("failed for a\\nb")
    assert lines[1].startswith("Traceback")


@pytest.fixture
def known_secret() -> Iterator[str]:
    secret = "kn0wn-Secret-\u00e9-value"
    remember_secrets([secret])
    yield secret
    KNOWN_SECRETS.forget_all()


def _leaks(text: str, secret: str) -> list[str]:
    forms = {secret, base64.b64encode(secret.encode()).decode(), json.dumps(secret)[1:-1]}
    forms.add(repr(json.dumps(secret).encode())[2:-1])
    return [form for form in forms if form in text]


def test_every_record_at_debug_is_redacted_of_known_secrets_in_every_handler(
    known_secret: str, captured_root: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPERATOR__LOG__FORMAT", "text")
    monkeypatch.setenv("OPERATOR__LOG__LEVEL", "DEBUG")
    # Other test modules pin library loggers (e.g. kubernetes_asyncio at INFO); this test needs them at the
    # operator's own level, whatever ran before it.
    for name in ("kubernetes_asyncio", "kubernetes_asyncio.client.rest", "kopf", "kopf.objects", "aiohttp"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    configure_logging(Settings(), captured_root)
    # Another handler (kopf posts kopf.objects records as Kubernetes Events with its own formatter).
    foreign = io.StringIO()
    poster = logging.StreamHandler(foreign)
    logging.getLogger("kopf.objects").addHandler(poster)
    encoded = base64.b64encode(known_secret.encode()).decode()
    body = json.dumps({"kind": "Secret", "data": {"k": encoded}, "note": known_secret}).encode()
    try:
        logging.getLogger("kubernetes_asyncio.client.rest").debug("response body: %s", body)
        logging.getLogger("kopf.objects").info("Patching with: %r", {"password": known_secret})
        logging.getLogger("aiohttp.client").debug("sent %s", known_secret.encode())
        logging.getLogger("communication_operator.test").warning("x", extra=log_context(name=known_secret))
    finally:
        logging.getLogger("kopf.objects").removeHandler(poster)
    out = captured_root.getvalue()
    assert out.count("\n") == 4
    assert _leaks(out, known_secret) == []
    assert "kopf.objects" in out
    assert foreign.getvalue().strip()
    assert _leaks(foreign.getvalue(), known_secret) == []
    for formatter in (JsonFormatter(), TextFormatter()):
        # A record created some other way (before installation) is still redacted by our formatters.
        raw = logging.LogRecord("lib", logging.DEBUG, __file__, 1, "body %s", (body,), None)
        assert _leaks(formatter.format(raw), known_secret) == []
