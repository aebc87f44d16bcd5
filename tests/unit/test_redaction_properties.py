"""Property: a secret planted in any input the operator redacts reaches no output channel.

Random secret values (whitespace, quotes, newlines, unicode; very short and very long) go into the
repository URL and credentials, value overrides, broker and cluster secrets, helm's stderr and the pod
diagnostics, log records of ours and of libraries at DEBUG, and the settings. The outputs checked are
everything the operator emits: hub reports, helm's argv, every log line in both formats (and what other
handlers receive), and settings errors. "Carries" follows the documented rule (docs/operations.md):

* a secret of at least ``MIN_ANYWHERE_LENGTH`` characters must not appear anywhere, nor its base64
  forms, nor (when it has surrounding whitespace) its stripped core;
* a shorter one (from ``MIN_TOKEN_LENGTH``) must not appear as a whole token, nor its base64 encoding
  as a whole base64 word; 1-2 characters, or whitespace only, are hidden in structural positions only.

Derandomized with no example database, so every run (and CI) checks the same examples.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from communication_operator.contracts import ValueOverrideDto
from communication_operator.logs import (
    JsonFormatter,
    TextFormatter,
    escape_controls,
    install_record_redaction,
)
from communication_operator.redaction import (
    KNOWN_SECRETS,
    MASK,
    MIN_ANYWHERE_LENGTH,
    MIN_TOKEN_LENGTH,
    redact,
    redact_and_bound,
    redact_url_tokens,
    remember_secrets,
    url_passwords,
)
from communication_operator.settings import ConfigurationError, load_settings
from communication_operator.workloads.helm import HelmCli
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.repository import RepositoryError, chart_source
from communication_operator.workloads.service import WorkloadService
from communication_operator.workloads.values import ClusterSecrets, OperatorContext
from communication_operator.workloads.watcher import ProgressSink

from .workloads.doubles import FakeWatcher, MemorySecrets, RecordingHub, dto
from .workloads.fake_helm import FakeHelm

_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
_NOTABLE = [
    "secret",  # a word of ordinary text (secrets.databaseUser)
    "pass word",
    "quo\"te's",
    "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----\n",
    "\t tab-separated pass \t",
    "pässwörd-€-🔑",
    "ab",
    "p@ss/w#rd?x",
]
#: Random secrets: short (whole-token rule), medium, very long, and some that broke things before.
SECRETS = st.one_of(
    st.text(_CHARACTERS, min_size=1, max_size=MIN_ANYWHERE_LENGTH - 1),
    st.text(_CHARACTERS, min_size=MIN_ANYWHERE_LENGTH, max_size=40),
    st.text(_CHARACTERS, min_size=200, max_size=600),
    st.sampled_from(_NOTABLE),
).filter(lambda secret: MASK not in secret)

PROFILE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _base64_forms(secret: str) -> set[str]:
    raw = secret.encode("utf-8")
    forms = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return forms | {form.rstrip("=") for form in forms}


def carried(text: str, secret: str) -> list[str]:
    """The forms of ``secret`` that ``text`` carries, by the documented rule (empty: none)."""
    if len(secret) < MIN_TOKEN_LENGTH or secret.isspace():
        return []
    if len(secret) >= MIN_ANYWHERE_LENGTH:
        forms = {secret} | _base64_forms(secret)
        core = secret.strip()
        if core != secret and len(core) >= MIN_ANYWHERE_LENGTH:
            forms.add(core)
        return sorted(form for form in forms if form in text)
    found = []
    if re.search(rf"(?<!\w){re.escape(secret)}(?!\w)", text):
        found.append(secret)
    for form in _base64_forms(secret):
        if re.search(rf"(?<![A-Za-z0-9+/=_-]){re.escape(form)}(?![A-Za-z0-9+/=_-])", text):
            found.append(form)
    return found


def assert_not_carried(outputs: dict[str, str], secrets: Sequence[str]) -> None:
    for channel, text in outputs.items():
        for secret in secrets:
            assert not carried(text, secret), f"{channel} carries {secret!r}: {text[:2000]!r}"


def _echoes(secrets: Sequence[str]) -> str:
    """A text showing each secret raw, in base64, JSON-escaped and in a Python repr, as tools do."""
    parts = []
    for secret in secrets:
        encoded = base64.b64encode(secret.encode()).decode()
        parts.append(f"value {secret} data {encoded} json {json.dumps(secret)} repr {secret!r}")
    return "\n".join(parts)


@contextmanager
def captured_logs() -> Iterator[dict[str, io.StringIO]]:
    """Every record at DEBUG, formatted by both of our formatters and by a plain foreign handler."""
    install_record_redaction()
    streams = {"json log": io.StringIO(), "text log": io.StringIO(), "foreign handler": io.StringIO()}
    formatters: list[logging.Formatter] = [JsonFormatter(), TextFormatter(), logging.Formatter()]
    handlers = []
    for stream, formatter in zip(streams.values(), formatters, strict=True):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handlers.append(handler)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield streams
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)
        KNOWN_SECRETS.forget_all()


# -- pure functions: many examples ------------------------------------------------------------------


@settings(PROFILE, max_examples=60)
@given(secret=SECRETS, prefix=st.text(max_size=30), suffix=st.text(max_size=30), limit=st.integers(0, 400))
def test_redact_then_bound_never_leaves_a_secret(secret: str, prefix: str, suffix: str, limit: int) -> None:
    text = f"{prefix}{_echoes([secret])}{suffix}"
    assert_not_carried({"redacted": redact(text, [secret])}, [secret])
    assert_not_carried({"bounded": redact_and_bound(text, limit, [secret], separator=" ")}, [secret])


@settings(PROFILE, max_examples=80)
@given(password=SECRETS, user=st.from_regex(r"[a-z]{1,8}", fullmatch=True), encode=st.booleans())
def test_repository_url_refusals_and_sources_never_carry_the_password(
    password: str, user: str, encode: bool
) -> None:
    written = quote(password, safe="") if encode else password
    url = f"https://{user}:{written}@charts.example/stable"
    try:
        source = chart_source(url, "web")
    except RepositoryError as refused:
        outputs = {"refusal": str(refused)}
    else:
        # A parsed URL moves the password out; helm gets the URL without it.
        outputs = {
            "repository url": source.repository_url,
            "chart ref": source.chart_ref,
            "repr": repr(source),
        }
    if not any(ch.isspace() for ch in written):
        # Structurally, a URL in free text ends at whitespace; a configured URL's password is known.
        outputs["hub url text"] = redact_url_tokens(f"cannot reach the controller at {url}")
    with captured_logs() as streams:
        remember_secrets(url_passwords(url))  # as the settings do for the controller URI
        logging.getLogger("aiohttp.client").debug("connecting to %s", url)
        outputs |= {name: stream.getvalue() for name, stream in streams.items()}
    assert_not_carried(outputs, [password, written])


@settings(PROFILE, max_examples=40)
@given(secret=SECRETS)
def test_library_and_own_log_records_at_debug_never_carry_a_known_secret(secret: str) -> None:
    with captured_logs() as streams:
        remember_secrets([secret])
        body = json.dumps({"kind": "Secret", "data": {"k": base64.b64encode(secret.encode()).decode()}})
        logging.getLogger("kubernetes_asyncio.client.rest").debug("response body: %s", body.encode())
        logging.getLogger("kopf.objects").debug(f"Patching with: { ({'stringData': {'k': secret}})!r}")
        logging.getLogger("aiohttp.client").debug("request %s", {"password": secret})
        logging.getLogger("communication_operator.workloads").warning(
            "deploy failed: %s", _echoes([secret]), extra={"workload": secret}
        )
        try:
            raise RuntimeError(f"helm said {secret}")
        except RuntimeError:
            logging.getLogger("communication_operator.workloads").exception("unexpected")
        outputs = {name: stream.getvalue() for name, stream in streams.items()}
    assert outputs["text log"].count("\n") >= 5
    assert_not_carried(outputs, [secret])


def _log_exception_carrying(secret: str, formatter: logging.Formatter) -> str:
    """One ``log.exception`` whose exception (and its cause) carries ``secret``, through ``formatter``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.exc_info.{type(formatter).__name__}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise KeyError(secret)
        except KeyError as cause:
            raise ValueError(f"bad value {secret}") from cause
    except ValueError:
        logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@settings(PROFILE, max_examples=60)
@given(secret=SECRETS, factory=st.booleans())
@example(secret='ab\\cd\nefgh"ij', factory=False)  # a control character with a backslash or a quote
@example(secret='ab\\cd\nefgh"ij', factory=True)
@example(secret="quo\"te's\tpass-word", factory=True)
def test_exception_texts_never_carry_a_known_secret_in_either_format(secret: str, factory: bool) -> None:
    """exc_info goes through each formatter's own exception formatting (the text format escapes control
    characters there): the secret is redacted before it is escaped, with or without the record factory."""
    # A secret that is part of the fixed text ("value") rightly masks it; the check below reads that text.
    assume(secret not in "ValueError: bad value")
    remember_secrets([secret])
    try:
        if factory:
            install_record_redaction()
        outputs = {
            "json log": _log_exception_carrying(secret, JsonFormatter()),
            "text log": _log_exception_carrying(secret, TextFormatter()),
        }
    finally:
        KNOWN_SECRETS.forget_all()
    assert "ValueError: bad value" in outputs["text log"]
    # The text format writes the secret's control characters as escapes: that form must not show either,
    # under the rule of the secret's own length (a 1-2 character secret is hidden in structural
    # positions only, however long its escaped form is).
    escaped = [escape_controls(secret)] if len(secret) >= MIN_TOKEN_LENGTH else []
    assert_not_carried(outputs, [secret, *escaped])


_SETTINGS_SECRETS = (
    "OPERATOR__BROKERPASSWORD",
    "OPERATOR__AUTHENTICATION__CLIENTSECRET",
    "OPERATOR__CLUSTERSECRETS__MONGODBUSERPASSWORD",
    "OPERATOR__CLUSTERSECRETS__STREAMDATAPASSWORD",
)
_SETTINGS_INVALID = (
    "OPERATOR__BROKERPORT",
    "OPERATOR__HELM__TIMEOUTSECONDS",
    "OPERATOR__LOG__FORMAT",
    "OPERATOR__POOLNAMESPACE",
    "OPERATOR__COMMUNICATIONCONTROLLERURI",
    "OPERATOR__CLUSTERSECRETS",
)


@settings(PROFILE, max_examples=60)
@given(
    secret=SECRETS,
    invalid=st.sampled_from(_SETTINGS_INVALID),
    in_secret_field=st.sampled_from(_SETTINGS_SECRETS),
)
def test_settings_errors_never_carry_a_value(
    secret: str, invalid: str, in_secret_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as env:
        for name in list(os.environ):
            if name.upper().startswith("OPERATOR__"):
                env.delenv(name)
        env.setenv(in_secret_field, secret)
        env.setenv(invalid, f"{secret}:not valid here")
        try:
            load_settings()
        except ConfigurationError as refused:
            assert_not_carried({"settings error": str(refused)}, [secret])


# -- the deploy service with a real helm stand-in process: fewer examples ------------------------------


class _EchoingWatcher(FakeWatcher):
    """Pod diagnostics that quote the secrets (a container printing its environment)."""

    echo = ""

    def snapshot(self) -> str:
        return self.echo


def _deploy(secrets: Sequence[str], encode_url_password: bool) -> tuple[dict[str, str], RecordingHub]:
    """One deploy with the secrets planted everywhere and a failing upgrade; every output channel."""
    url_password, repository_password, override, broker, cluster = secrets
    written = quote(url_password, safe="") if encode_url_password else url_password
    echoes = _echoes(secrets)
    with tempfile.TemporaryDirectory() as tmp, captured_logs() as streams:
        fake = FakeHelm(Path(tmp) / "helm")
        fake.history((3, "deployed"))
        # The override also ends the text: trimming it before redaction would cut a trailing blank off.
        fake.set("upgrade", exit=1, stderr=f"Error: UPGRADE FAILED: {echoes}\n{override}")
        fake.set("repo-update", stderr=f"warning: {echoes}\n")
        hub = RecordingHub()

        def watcher(release: str, namespace: str, sink: ProgressSink, known: Sequence[str]) -> FakeWatcher:
            created = _EchoingWatcher(release, namespace, sink, known)
            created.echo = echoes
            return created

        service = WorkloadService(
            hub,
            HelmCli(binary=str(fake.binary)),
            MemorySecrets(),
            watcher,
            OperatorContext(
                broker_password=broker,
                cluster_secrets=ClusterSecrets(mongodb_user_password=cluster, stream_data_password=cluster),
            ),
            WorkloadOptions(namespace="octo", timeout_seconds=60),
        )

        async def deploy() -> None:
            await service.on_workload_deployed(
                dto(
                    repository_url=f"https://bot:{written}@charts.example/stable",
                    repository_username="reader",
                    repository_password=repository_password,
                    receives_cluster_secrets=True,
                    values=[ValueOverrideDto(path="config.key", value=override, is_secret=True)],
                )
            )
            async with asyncio.timeout(30):
                await service.wait_idle()

        asyncio.run(deploy())
        outputs = {name: stream.getvalue() for name, stream in streams.items()}
        outputs["hub reports"] = "\n".join(hub.texts())
        outputs["helm argv"] = "\n".join(" ".join(call.argv) for call in fake.calls())
        outputs["values files"] = "\n".join(
            (fake.dir / f"captured-{name}").read_text()
            for name in ("values-context.yaml", "values-base.yaml", "values-overrides.yaml")
            if (fake.dir / f"captured-{name}").exists()
        )
    return outputs, hub


@functools.cache
def _unredacted_baseline() -> str:
    """helm's argv and the values files of a deploy with innocuous secrets: ids, names, flags. A planted
    secret that occurs there anyway (``00000000`` inside a workload id) says nothing about a leak."""
    outputs, _ = _deploy([f"innocuous-secret-{i}" for i in range(5)], encode_url_password=False)
    return outputs["helm argv"] + "\n" + outputs["values files"]


@settings(PROFILE, max_examples=8)
@given(secrets=st.lists(SECRETS, min_size=5, max_size=5), encode_url_password=st.booleans())
@example(
    secrets=["url-pass/w#rd", "repo pass word", "\t tab-separated pass \t", "secret", "pässwörd-€-🔑"],
    encode_url_password=True,
)
def test_a_deploy_never_carries_its_secrets_to_reports_argv_or_logs(
    secrets: list[str], encode_url_password: bool
) -> None:
    assume(not any(carried(_unredacted_baseline(), secret) for secret in secrets))
    outputs, hub = _deploy(secrets, encode_url_password)
    assert hub.statuses(), "the deploy reported no final status"
    written = quote(secrets[0], safe="") if encode_url_password else secrets[0]
    assert_not_carried(outputs, [*secrets, written])
