"""Property: no secret planted in pod/event messages or helm stderr survives the text pipeline.

Random secrets (whitespace, quotes, newlines, unicode; 3 to 3,000 characters, key-like multi-line
blocks and passphrases) are planted, together with their base64 form, into container waiting and
termination messages, pod conditions and Warning events, and into helm's stderr. They then go through
everything that turns those texts into what leaves the operator: ingestion (``redact_api_object``),
classification (``SignalSet``, ``classify_*``), ``describe`` (the fail-fast line and its log line),
the upstream diagnostics lines, ``fit_lines`` (progress reports),
``failure_stderr`` and ``with_diagnostics`` (the failed status), each at a random limit, so cuts fall
anywhere, across the secret too.

Two assertions per output:

* neither the secret nor any of its base64 forms appears;
* non-interference: the output is exactly the output for a different secret of the same length
  (private-use characters) planted in the same places. Every secret is masked before anything is
  cut, collapsed or joined, so nothing of its content (not even a fragment next to a cut) can show;
  redacting after a cut fails this at once.

A secret is planted between two private-use delimiters (never whitespace, never alphanumeric), so
only the planted copy, and no accidental overlap with random filler, is what gets masked. Values the
redaction rule does not mask by design (1 or 2 characters, whitespace-only, and base64 forms shorter than
``MIN_ENCODED_LENGTH``; see redaction/patterns.py) are not planted or are skipped.
"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from communication_operator.redaction import encoded_forms, redact, truncate_middle
from communication_operator.workloads.diagnostics import (
    diagnostic_lines,
    fail_fast_head,
    fit_lines,
    redact_api_object,
    with_diagnostics,
)
from communication_operator.workloads.helm import HelmError, failure_stderr
from communication_operator.workloads.signals.events import classify_event
from communication_operator.workloads.signals.model import Signal, SignalKind
from communication_operator.workloads.signals.pods import classify_pod
from communication_operator.workloads.signals.policy import FailFastPolicy
from communication_operator.workloads.signals.signalset import SignalSet
from communication_operator.workloads.signals.text import clean_text, describe

from .kube_objects import POD, RELEASE, REPLICASET, container, event, pod

DELIMITER = "\ue000"
SUBSTITUTE = "\ue001"
_EXCLUDED = DELIMITER + SUBSTITUTE + "*"  # '*' is the mask's own character

_characters = st.characters(blacklist_categories=("Cs",), blacklist_characters=_EXCLUDED)
_whitespace = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", " \t ", "\u00a0", "\u2003"])
_word = st.text(_characters, min_size=1, max_size=12).filter(lambda w: not w.isspace())
_base64_line = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", min_size=8, max_size=64
)

secrets = st.one_of(
    st.text(_characters, min_size=3, max_size=12),  # short, anything
    st.text(_characters, min_size=13, max_size=3000),  # long, anything
    st.lists(_base64_line, min_size=2, max_size=8).map(  # a PEM-like multi-line key
        lambda lines: "-----BEGIN KEY-----\n" + "\n".join(lines) + "\n-----END KEY-----"
    ),
    st.tuples(_word, st.lists(st.tuples(_whitespace, _word), min_size=1, max_size=5)).map(  # passphrase
        lambda parts: parts[0] + "".join(space + word for space, word in parts[1])
    ),
    st.tuples(st.sampled_from(['"', "'", " ", "\n"]), _word, st.sampled_from(['"', "'", " ", "\t"])).map(
        "".join
    ),  # quoted or padded
)
fillers = st.text(_characters, max_size=300)
limits = st.integers(min_value=0, max_value=4500)


def _planted(secret: str) -> str:
    return DELIMITER + secret + DELIMITER


def _b64(secret: str) -> str:
    return base64.b64encode(secret.encode()).decode()


def _objects(
    secret: str, fillers: list[str], plant_b64: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    f = fillers
    encoded = _planted(_b64(secret)) if plant_b64 else ""
    web = container(
        "web", waiting=("ImagePullBackOff", f[0] + _planted(secret) + f[1]), restarts=2, image="bad/web:1"
    )
    web["lastState"] = {
        "terminated": {"exitCode": 137, "reason": "OOMKilled", "message": f[2] + encoded + f[3]}
    }
    init = container("migrate", terminated=(1, "Error"), message=f[4] + _planted(secret))
    failing = pod(
        containers=[web],
        init_containers=[init],
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": _planted(secret),
            }
        ],
    )
    config = pod(
        name=f"{RELEASE}-config-0",
        containers=[container(waiting=("CreateContainerConfigError", _planted(secret) + f[5]))],
    )
    events = [
        event(
            reason="Failed",
            message=f"Failed to pull image: {f[6]}{_planted(secret)}",
            field_path="spec.containers{web}",
        ),
        event(reason="FailedCreate", message=f[7] + encoded, kind="ReplicaSet", name=REPLICASET),
        event(reason="Unhealthy", message=_planted(secret) + f[8], name=f"{RELEASE}-config-0"),
    ]
    stderr = f"Error: UPGRADE FAILED: {f[9]}{_planted(secret)}\n{encoded}\n"
    return [failing, config], events, stderr


def _outputs(secret: str, fillers: list[str], plant_b64: bool, limit: int) -> list[str]:
    """Everything the operator may send or log about these objects, cut at ``limit``."""
    secret_list = [secret]
    pods, events, stderr = _objects(secret, fillers, plant_b64)
    outputs: list[str] = []

    # The watcher: objects redacted on arrival, then classified (as ReleaseWatcher does).
    signal_set = SignalSet(FailFastPolicy(), secrets=secret_list)
    for item in pods:
        signal_set.observe_pod(redact_api_object(item, secret_list), 0.0)
    for item in events:
        signal_set.observe_event(redact_api_object(item, secret_list), 0.0)
    watched = list(signal_set.signals(1000.0))
    # Classification of raw objects, and a raw signal (a watcher that did not redact).
    raw = [signal for item in pods for signal in classify_pod(item, secret_list)]
    raw += [s for item in events if (s := classify_event(item, secret_list)) is not None]
    raw.append(
        Signal(
            SignalKind.CRASH_LOOP_BACK_OFF,
            "Pod",
            POD,
            "CrashLoopBackOff",
            fillers[0] + _planted(secret),
            "web",
        )
    )
    for signal in watched + raw:
        outputs.append(describe(signal, limit=limit, secrets=secret_list))

    lines = diagnostic_lines(pods, events, release=RELEASE, secrets=secret_list)
    outputs.append(fit_lines(lines, limit, secret_list))
    redacted_lines = diagnostic_lines(
        [redact_api_object(item, secret_list) for item in pods],
        [redact_api_object(item, secret_list) for item in events],
        release=RELEASE,
        redacted=True,  # as the watcher builds them
    )
    outputs.append(fit_lines(redacted_lines, limit, secret_list))

    helm_line = str(HelmError(f"upgrade --install {RELEASE}", 1, failure_stderr(stderr, secret_list, limit)))
    causes = [describe(signal, limit=400, secrets=secret_list) for signal in watched[:3]]
    for head in (helm_line, fail_fast_head(RELEASE, causes, 300)):
        status = with_diagnostics(head, "\n".join(lines), limit=limit, secrets=secret_list)
        outputs.append(status)
        # What the service does with it: bound the report and its log line once more.
        outputs.append(truncate_middle(redact(status, secret_list), limit))
        outputs.append(
            truncate_middle(redact(" | ".join(status.splitlines()), secret_list), 600, separator=" ")
        )
    return outputs


def _masked(text: str, secret: str) -> bool:
    """Whether the redaction rule masks ``text`` as a value of ``secret`` (standing alone)."""
    return redact(_planted(text), [secret]) == _planted("***")


def _forms(secret: str) -> set[str]:
    """The secret, and those of its encoded and collapsed forms the rule masks (not those of
    secrets too short to be searched in encoded form)."""
    collapsed = " ".join(secret.split())
    forms = {secret, *(form for form in encoded_forms(secret) if _masked(form, secret))}
    if collapsed != secret and clean_text(_planted(collapsed), [secret]) == _planted("***"):
        forms.add(collapsed)  # cluster texts are searched for it too (clean_text)
    return forms


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=secrets, filler=st.lists(fillers, min_size=10, max_size=10), limit=limits)
def test_no_planted_secret_survives_any_output_at_any_limit(
    secret: str, filler: list[str], limit: int
) -> None:
    # Masked by value at all (the redaction rule for short and whitespace-only values)?
    assume(_masked(secret, secret))
    plant_b64 = _masked(_b64(secret), secret)
    substitute = SUBSTITUTE * len(secret)
    forms = _forms(secret)
    assume(not any(form in text for form in forms for text in filler))

    # A secret that the output contains without being planted (a part of a pod name, a word of a
    # format) cannot be told apart from the scaffolding; such draws say nothing about leaks.
    uncut = _outputs(substitute, filler, plant_b64, 10**6)
    assume(not any(form in text for form in forms for text in uncut))
    expected = _outputs(substitute, filler, plant_b64, limit)
    actual = _outputs(secret, filler, plant_b64, limit)

    for text in actual:
        for form in forms:
            assert form not in text, f"{form!r} in {text!r}"
    assert actual == expected


@given(secret=secrets, limit=st.integers(min_value=0, max_value=700))
@settings(max_examples=100, deadline=None)
def test_a_cut_across_the_secret_leaves_no_fragment(secret: str, limit: int) -> None:
    """The exact issue-13 case: the secret placed where ``describe`` cuts, at every limit."""
    assume(_masked(secret, secret))
    substitute = SUBSTITUTE * len(secret)

    def line(value: str, before: int) -> str:
        message = "a" * before + _planted(value) + "b" * 700
        signal = Signal(SignalKind.IMAGE_PULL_BACK_OFF, "Pod", POD, "ImagePullBackOff", message, "web")
        return describe(signal, limit=limit, secrets=[value])

    for before in range(0, 700, 37):
        expected = line(substitute, before)
        assume(secret not in expected)
        assert line(secret, before) == expected
