"""The cost of the log safety net: every record redacted with every secret the process knows.

``python -m benchmarks.redaction``. For 0, 10, 100 and 1,000 known secrets (16 random characters
each, so with their encoded forms about 15 to 18 patterns per secret): the time to build the pattern
once (it is rebuilt when a new secret arrives), and the time to format one typical 200-character log
record and one 50 KB response body (kubernetes-asyncio at DEBUG) with our text formatter, against the
same record formatted by a plain ``logging.Formatter`` as the baseline. Also the prefix-tree pattern
against a flat alternation of the same strings, which is what the tree replaces, and 300 deploys each
bringing one new secret: the generations :class:`KnownSecrets` keeps against one pattern rebuilt each time.
"""

from __future__ import annotations

import logging
import random
import re
import string
import time
from collections.abc import Callable

from communication_operator.logs import TextFormatter
from communication_operator.redaction import KNOWN_SECRETS, encoded_forms, mask_matches, secret_pattern

LINE = (
    "release acme-65f0c0ffee0000000000bbbb deployed in 12.3 s: Deployed revision 3 of web 0.1.0 "
    "tenant=acme pool=65f0c0ffee0000000000aaaa workload=65f0c0ffee0000000000bbbb namespace=octo x"
)


def _secrets(count: int, rng: random.Random) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-_!"
    return ["".join(rng.choice(alphabet) for _ in range(16)) for _ in range(count)]


def _body(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    data = "".join(rng.choice(alphabet) for _ in range(50_000))
    return f'response body: b\'{{"kind":"Secret","data":{{"release":"{data}"}}}}\''


def _per_call(action: Callable[[], object], seconds: float = 0.5) -> float:
    action()
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        action()
        calls += 1
    return elapsed / calls


def main() -> None:
    rng = random.Random(13)
    body = _body(rng)
    plain = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    print("| known secrets | build pattern | 200-char line | 50 KB body | plain formatter (line / body) |")
    print("|---|---|---|---|---|")
    for count in (0, 10, 100, 1000):
        secrets = _secrets(count, rng)
        KNOWN_SECRETS.forget_all()
        started = time.perf_counter()
        KNOWN_SECRETS.remember(secrets)
        KNOWN_SECRETS.redact("warm up")  # builds the pattern
        build = time.perf_counter() - started
        formatter = TextFormatter()  # redacts with KNOWN_SECRETS

        def format_with(text: str, fmt: logging.Formatter) -> Callable[[], object]:
            record = logging.LogRecord(
                "kubernetes_asyncio.client.rest", logging.DEBUG, "", 0, text, None, None
            )
            return lambda: fmt.format(record)

        line = _per_call(format_with(LINE, formatter))
        big = _per_call(format_with(body, formatter), seconds=1.0)
        line_plain = _per_call(format_with(LINE, plain))
        big_plain = _per_call(format_with(body, plain))
        print(
            f"| {count} | {build * 1000:.1f} ms | {line * 1e6:.0f} µs | {big * 1000:.2f} ms "
            f"| {line_plain * 1e6:.1f} µs / {big_plain * 1e6:.0f} µs |"
        )
    forms = sorted({form for secret in _secrets(1000, rng) for form in (secret, *encoded_forms(secret))})
    tree = secret_pattern(_secrets(1000, random.Random(13)))
    flat = re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))
    assert tree is not None
    print(f"\n1,000 secrets ({len(forms)} strings), 200-char line:")
    print(f"  prefix tree:      {_per_call(lambda: mask_matches(LINE, [tree])) * 1e6:.0f} µs")
    print(f"  flat alternation: {_per_call(lambda: flat.sub('***', LINE)) * 1e6:.0f} µs")


def stream_of_deploys(count: int = 300) -> None:
    """Each deploy brings one new secret and logs a line: generations against one rebuilt pattern."""
    secrets = _secrets(count, random.Random(7))
    KNOWN_SECRETS.forget_all()
    started = time.perf_counter()
    for secret in secrets:
        KNOWN_SECRETS.remember([secret])
        KNOWN_SECRETS.redact(LINE)
    generations = time.perf_counter() - started
    started = time.perf_counter()
    for index in range(len(secrets)):
        pattern = secret_pattern(secrets[: index + 1])
        assert pattern is not None
        mask_matches(LINE, [pattern])
    rebuilt = time.perf_counter() - started
    KNOWN_SECRETS.forget_all()
    print(f"\n{count} deploys, one new secret each, one line logged after each:")
    print(f"  generations:           {generations:.2f} s")
    print(f"  one pattern, rebuilt:  {rebuilt:.2f} s")


if __name__ == "__main__":
    main()
    stream_of_deploys()
