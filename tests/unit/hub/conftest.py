"""The hub's tests obtain tokens, which the process then knows as secrets for good; forgetting them
after each test keeps a test's token (``first``) from masking that word in another test's text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from communication_operator.redaction import KNOWN_SECRETS


@pytest.fixture(autouse=True)
def _forget_known_secrets() -> Iterator[None]:
    yield
    KNOWN_SECRETS.forget_all()
