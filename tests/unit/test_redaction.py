"""Secrets are masked in every form they take in text; texts are cut to size without losing both ends."""

from __future__ import annotations

import base64

import pytest

from communication_operator.redaction import MASK, encoded_forms, redact, truncate_middle

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
