"""The excerpt of a malformed record shows its shape and the contract's names, never its values."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from communication_operator.hub.records import EXCERPT_LIMIT, record_excerpt


def test_names_and_ids_are_kept_values_masked() -> None:
    record = (
        '{"type":1,"target":"WorkloadDeployedAsync","arguments":[{"tenantId":"acme",'
        '"workloadRtId":"65f0c0ffee0000000000bbbb","repositoryPassword":"pw-123","valuesYaml":"a: b"'
    )
    excerpt = record_excerpt(record)
    assert excerpt == (
        '{"type":1,"target":"WorkloadDeployedAsync","arguments":[{"tenantId":"acme",'
        '"workloadRtId":"65f0c0ffee0000000000bbbb","repositoryPassword":"***","valuesYaml":"***"'
    )


def test_bare_words_are_masked_and_control_characters_escaped() -> None:
    assert record_excerpt("not json at all\nFAKE LOG LINE") == "*** *** *** ***\\n*** *** ***"


def test_a_string_cut_off_after_a_backslash_is_masked_whole() -> None:
    assert record_excerpt('{"value":"pin 1234 \\') == '{"value":"***"'


def test_long_records_are_cut_with_their_length() -> None:
    excerpt = record_excerpt("[" * 50_000)
    assert excerpt.endswith("… (50000 characters in all)")
    assert len(excerpt) < EXCERPT_LIMIT + 40


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(min_size=4, max_size=60).filter(lambda s: s.strip() and not s.strip().isdigit()),
    cut=st.integers(min_value=0, max_value=400),
    key=st.sampled_from(["repositoryPassword", "value", "valuesYaml", "x"]),
)
@example(secret="message", cut=0, key="repositoryPassword")  # a value that reads like a property name
@example(secret="workloadName", cut=0, key="x")
def test_a_secret_in_a_string_value_never_shows(secret: str, cut: int, key: str) -> None:
    record = json.dumps({"type": 1, "target": "WorkloadDeployedAsync", "arguments": [{key: secret}]})
    broken = record[: max(0, len(record) - cut)]  # a record broken anywhere, even inside the value
    excerpt = record_excerpt(broken)
    for form in (secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]):
        if len(form) >= 4 and form not in ("type", "target", "arguments"):
            assert form not in excerpt or form in record_excerpt(json.dumps({key: ""})), (form, excerpt)
