"""Repeated authentication refusals: ERROR first, then one WARNING per interval with a count."""

from __future__ import annotations

import logging

import pytest

from communication_operator.hub.throttle import AuthRefusalLog, LogThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_admits_one_per_interval_and_counts_the_rest() -> None:
    clock = Clock()
    throttle = LogThrottle(60, clock)
    assert throttle.admit() == 0
    clock.now += 10
    assert throttle.admit() is None
    clock.now += 10
    assert throttle.admit() is None
    clock.now += 45
    assert throttle.admit() == 2
    assert throttle.admit() is None


def test_refusals_are_an_error_first_then_rate_limited_warnings(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    refusals = AuthRefusalLog(logging.getLogger("test.auth"), 60, clock)
    with caplog.at_level(logging.DEBUG, logger="test.auth"):
        for _ in range(30):  # one attempt every 5 s for 150 s
            refusals.refused("https://controller", "negotiate refused with HTTP 401")
            clock.now += 5
    levels = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno > logging.DEBUG]
    assert [level for level, _ in levels] == [logging.ERROR, logging.WARNING, logging.WARNING]
    assert "HTTP 401" in levels[0][1]
    assert "still refuses our credentials" in levels[1][1]
    assert "11 more refusal(s) in the last 60 s" in levels[1][1]
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 27
