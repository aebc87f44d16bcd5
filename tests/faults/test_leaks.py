"""The leak finder itself: it must find a planted secret in every form the sweep promises to catch,
and nothing in text that only resembles one."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from tests.faults.leaks import find_leaks, plant


@pytest.mark.parametrize("prefix", ["", "x", "xy"])  # the three base64 alignments
def test_base64_inside_a_larger_document_is_found(prefix: str) -> None:
    secret = plant("pw", "p@ss {core} word")
    document = f'{prefix}{{"config.greeting": "{secret.value}", "other": "value"}}'
    text = "Secret data: " + base64.b64encode(document.encode()).decode()
    (leak,) = find_leaks({"log": text}, [secret])
    assert leak.startswith("log: pw as base64@")
    # The report masks what it found.
    assert secret.value not in leak
    assert secret.core not in leak


def test_cut_respaced_quoted_and_encoded_forms_are_found() -> None:
    secret = plant("key", "line one\t{core} and  more\nline two")
    forms = {
        "cut": secret.value[:-1],
        "collapsed": " ".join(secret.value.split()),
        "json": json.dumps({"message": secret.value}),
        "url": "https://host/?q=" + quote(secret.value, safe=""),
    }
    for name, text in forms.items():
        assert find_leaks({name: text}, [secret]), name


def test_unrelated_text_is_not_a_leak() -> None:
    secret = plant("pw")
    other = plant("pw")  # same shape, different random core
    text = f"deploy failed for {other.value}; " + base64.b64encode(other.value.encode()).decode()
    assert find_leaks({"log": text}, [secret]) == []
