"""Finding planted secrets in output, in every form a leak takes.

A planted secret is ``<label>-<random hex>`` plus whatever shape the test needs (whitespace, newlines);
its random *core* is unique, so finding the core anywhere means a leak even when the secret was cut,
re-spaced or quoted. Encoded forms are searched too: JSON-escaped, URL-encoded, and base64 at each of
the three alignments a value can have inside a larger base64 text (a Secret's ``data`` is the base64 of
a whole document, so the value's own base64 never appears; the aligned slices do).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from urllib.parse import quote, quote_plus


@dataclass(frozen=True)
class Planted:
    label: str
    value: str
    core: str  # the random part: unique, no whitespace

    def forms(self) -> dict[str, str]:
        value = self.value
        found = {
            "verbatim": value,
            "core": self.core,
            "whitespace-collapsed": " ".join(value.split()),
            "json-escaped": json.dumps(value)[1:-1],
            "url-encoded": quote(value, safe=""),
            "form-encoded": quote_plus(value),
        }
        raw = value.encode()
        for skip in range(3):
            chunk = raw[skip:]
            chunk = chunk[: len(chunk) // 3 * 3]
            if len(chunk) >= 9:
                found[f"base64@{skip}"] = base64.b64encode(chunk).decode()
                found[f"base64url@{skip}"] = base64.urlsafe_b64encode(chunk).decode()
        return found


def plant(label: str, shape: str = "{core}") -> Planted:
    """A fresh secret: ``shape`` with ``{core}`` replaced by ``<label>-<24 hex>``."""
    core = f"{label}-{secrets.token_hex(12)}"
    return Planted(label, shape.format(core=core), core)


def find_leaks(channels: dict[str, str], planted: list[Planted]) -> list[str]:
    """``<channel>: <secret label> as <form>: …context…`` for every planted value found in a channel."""
    leaks = []
    for channel, text in channels.items():
        for secret in planted:
            for form, needle in secret.forms().items():
                at = text.find(needle)
                if at >= 0:
                    context = text[max(0, at - 80) : at + len(needle) + 40]
                    context = context.replace(needle, f"<{secret.label}>").replace("\n", "\\n")
                    leaks.append(f"{channel}: {secret.label} as {form}: …{context}…")
                    break
    return leaks
