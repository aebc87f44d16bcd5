"""Secrets are masked in every form they take in text; texts are cut to size without losing both ends."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from communication_operator.redaction import (
    MASK,
    MIN_ANYWHERE_LENGTH,
    KnownSecrets,
    describe_url,
    encoded_forms,
    escaped_forms,
    mask_url_credentials,
    redact,
    redact_and_bound,
    truncate_middle,
    url_passwords,
)

SECRET = "s3cr3t-Passw0rd!"


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        (f"login failed for {SECRET} here", [SECRET], f"login failed for {MASK} here"),
        (f"{SECRET}{SECRET}", [SECRET], MASK + MASK),
        ("nothing secret", [SECRET], "nothing secret"),
        ("", [SECRET], ""),
        # The longer of two overlapping secrets is replaced whole.
        ("token abcdef123456", ["abcd", "abcdef123456"], f"token {MASK}"),
        # Short secrets: 1-2 chars never by value, 3 chars only as a whole token.
        ("a cat sat", ["a"], "a cat sat"),
        ("id 42 and 420", ["42"], "id 42 and 420"),
        ("pin xyz, not xyzzy", ["xyz"], f"pin {MASK}, not xyzzy"),
        # Regex metacharacters in a secret are literal.
        ("pw is a.b*c+d", ["a.b*c+d"], f"pw is {MASK}"),
    ],
)
def test_redacts_secret_values(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode], ids=["standard", "urlsafe"])
def test_redacts_base64_forms(encode: object) -> None:
    assert callable(encode)
    encoded = encode(SECRET.encode()).decode()
    assert redact(f"data: {encoded}", [SECRET]) == f"data: {MASK}"
    assert redact(f"data: {encoded.rstrip('=')}", [SECRET]) == f"data: {MASK}"


@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "admin-user:"])
def test_redacts_a_secret_embedded_in_a_longer_base64_blob(prefix: str) -> None:
    # e.g. a .dockerconfigjson "auth" field: base64("user:password")
    blob = base64.b64encode(f"{prefix}{SECRET}".encode()).decode()
    redacted = redact(f'"auth": "{blob}"', [SECRET])
    assert MASK in redacted
    # Of the characters encoding the secret, at most two partial ones on each side remain.
    leftover = redacted.split('"auth": "')[1].rstrip('"').replace(MASK, "")
    assert len(leftover) <= len(base64.b64encode(prefix.encode())) + 4


def test_encoded_forms_skip_fragments_too_short_to_be_specific() -> None:
    assert all(len(form) >= 6 for form in encoded_forms("abcd"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "helm repo add x https://bob:hunter2@charts.example/x",
            f"helm repo add x https://bob:{MASK}@charts.example/x",
        ),
        ("oci://u:p@registry:5000/c", f"oci://u:{MASK}@registry:5000/c"),
        ("https://host:8443/path@v1", "https://host:8443/path@v1"),
        (
            "helm repo add a u --username bob --password hunter2 x",
            f"helm repo add a u --username bob --password {MASK} x",
        ),
        ("--password=hunter2", f"--password={MASK}"),
        ('--token "a b c"', f'--token "{MASK}"'),
        ("--password-stdin", "--password-stdin"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", f"Authorization: Bearer {MASK}"),
        ("authorization=Basic dXNlcjpwYXNz", f"authorization=Basic {MASK}"),
        ("curl -H 'bearer abcdefgh12345678'", f"curl -H 'bearer {MASK}'"),
        ("password=hunter2&user=bob", f"password={MASK}&user=bob"),
        ('{"clientSecret": "hunter2"}', f'{{"clientSecret": "{MASK}"}}'),
        (
            '{"repositoryPassword":"hunter2","isSecret":true}',
            f'{{"repositoryPassword":"{MASK}","isSecret":true}}',
        ),
        ("mongodbUserPassword=hunter2 ok", f"mongodbUserPassword={MASK} ok"),
        ('secret "web-secret" not found', 'secret "web-secret" not found'),
    ],
)
def test_redacts_structural_credentials_without_a_secret_list(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_short_secret_is_still_hidden_in_structural_positions() -> None:
    assert redact("https://bob:pw@x.example", ["pw"]) == f"https://bob:{MASK}@x.example"


@pytest.mark.parametrize(
    ("length", "limit"),
    [(10, 100), (100, 100), (101, 100), (5000, 4000), (10_000, 50), (10_000, 10), (10, 0)],
)
def test_truncate_middle_bounds(length: int, limit: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    result = truncate_middle(text, limit)
    assert len(result) <= limit
    if length <= limit:
        assert result == text


def test_truncate_middle_keeps_both_ends_and_says_how_much_went() -> None:
    text = "ERROR at start " + "x" * 5000 + " diagnostics at end"
    result = truncate_middle(text, 300)
    assert result.startswith("ERROR at start")
    assert result.endswith("diagnostics at end")
    omitted = int(result.split("[")[1].split(" ")[0])
    assert len(result) - len(f"\n… [{omitted} characters omitted] …\n") + omitted == len(text)


def test_truncate_middle_rejects_negative_limits() -> None:
    with pytest.raises(ValueError, match="negative"):
        truncate_middle("x", -1)


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        # Below MIN_ANYWHERE_LENGTH a secret is masked only as a whole token: the text stays readable.
        ("secrets.databaseUser is secret", "secret", f"secrets.databaseUser is {MASK}"),
        ("mysecret, secret_x, secret.", "secret", f"mysecret, secret_x, {MASK}."),
        ('"password": "secret"', "secret", f'"password": "{MASK}"'),
        ("pin xyz, not xyzzy", "xyz", f"pin {MASK}, not xyzzy"),
        # Its full base64 encoding, as a whole base64 word (the data of a Secret).
        ('{"k": "c2VjcmV0"}', "secret", f'{{"k": "{MASK}"}}'),
        ("c2VjcmV0c2VjcmV0", "secret", "c2VjcmV0c2VjcmV0"),
        # From MIN_ANYWHERE_LENGTH on: everywhere, inside words too.
        ("xxs3cr3t-pwyy", "s3cr3t-pw", f"xx{MASK}yy"),
    ],
)
def test_short_secrets_are_masked_as_whole_tokens_only(text: str, secret: str, expected: str) -> None:
    assert len(secret) < MIN_ANYWHERE_LENGTH or secret == "s3cr3t-pw"
    assert redact(text, [secret]) == expected


@pytest.mark.parametrize(
    "secret", ["multi\nline\tkey-\u00e9\u20ac", 'quo"te\\back-slash', "sp ace s+&/=?#"], ids=repr
)
def test_escaped_and_percent_encoded_forms_are_masked(secret: str) -> None:
    shown = [
        json.dumps({"k": secret}),
        json.dumps({"k": secret}, ensure_ascii=False),
        repr({"k": secret}),
        repr(json.dumps({"k": secret}).encode()),
        repr(secret.encode()),
        f"https://h.example/?p={quote(secret, safe='')}",
        f"https://h.example/?p={quote_plus(secret)}",
    ]
    for text in shown:
        redacted = redact(text, [secret])
        assert MASK in redacted, text
        assert all(form not in redacted for form in (secret, *escaped_forms(secret))), redacted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://bob:pa/ss@host/x", f"https://bob:{MASK}@host/x"),
        ("https://bob:pa#ss@host/x", f"https://bob:{MASK}@host/x"),
        ("https://bob:p@ss@host/x", f"https://bob:{MASK}@host/x"),
        ("https://bob:@host/x", f"https://bob:{MASK}@host/x"),
        ('["https://a:b1@h/x","https://c:d2@h/y"]', f'["https://a:{MASK}@h/x","https://c:{MASK}@h/y"]'),
        ("https://host:8443/path@v1", "https://host:8443/path@v1"),
        ("https://bob@host/x", "https://bob@host/x"),
        ("mailto:a@b.example", "mailto:a@b.example"),
    ],
)
def test_url_credentials_are_masked_even_when_the_url_does_not_parse(text: str, expected: str) -> None:
    assert mask_url_credentials(text) == expected
    assert redact(text) == expected


def test_url_passwords_are_found_as_written_and_decoded() -> None:
    assert url_passwords("https://u:p%40ss/w@h/x") == {"p%40ss/w", "p@ss/w"}
    assert url_passwords("https://u:a b\tc@h/x") == {"a b\tc"}
    assert url_passwords("https://h/x") == frozenset()


def test_describe_url_masks_without_a_scheme_and_quotes() -> None:
    assert describe_url("bob:hunter22@charts.example/x") == f"'bob:{MASK}@charts.example/x'"
    assert (
        describe_url("https://bob:hunter22@charts.example/\n") == f"'https://bob:{MASK}@charts.example/\\n'"
    )


def test_redact_and_bound_redacts_before_the_cut() -> None:
    secret = "straddling-secret-value"
    text = "a" * 50 + secret + "b" * 50
    for limit in range(40, 120, 7):
        bounded = redact_and_bound(text, limit, [secret], separator=" ")
        assert len(bounded) <= limit
        assert secret[:-1] not in bounded
        assert secret[1:] not in bounded


def test_known_secrets_grow_replace_the_pattern_and_forget_the_oldest() -> None:
    known = KnownSecrets(limit=2)
    assert known.redact("pw first-secret-1") == "pw first-secret-1"
    known.remember(["first-secret-1", ""])
    assert known.redact("pw first-secret-1") == f"pw {MASK}"
    known.remember(["second-secret-2", "third-secret-3"])
    assert len(known) == 2
    assert known.redact("first-secret-1 second-secret-2 third-secret-3") == f"first-secret-1 {MASK} {MASK}"
    # Structural rules apply whatever is known.
    assert known.redact("https://u:pw@h") == f"https://u:{MASK}@h"


def test_the_longest_of_many_secrets_sharing_a_prefix_wins() -> None:
    secrets = [f"shared-prefix-{i}" for i in range(200)] + ["shared-prefix-1999-long"]
    assert redact("x shared-prefix-1999-long y", secrets) == f"x {MASK} y"
    assert redact("x shared-prefix-19 y", secrets) == f"x {MASK} y"


def test_overlapping_secrets_are_masked_as_one_stretch() -> None:
    assert redact("x abcdefghijk y", ["abcdefgh", "defghijk"]) == f"x {MASK} y"


def test_known_secrets_of_different_generations_overlap_without_a_remainder() -> None:
    known = KnownSecrets()
    known.remember(["hunter2-pass-" + str(i) for i in range(10)])
    assert known.redact("warm up") == "warm up"
    known.remember(["xx-hunter2-pass-1-yy"])  # a newer, longer secret around an older one
    assert known.redact("a xx-hunter2-pass-1-yy b") == f"a {MASK} b"
