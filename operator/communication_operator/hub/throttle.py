"""Rate-limited logging of a condition that repeats on every reconnect attempt.

The controller refusing our credentials is worth a WARNING every time it starts again (an expired
client secret, a revoked client), but the reconnect loop retries every few seconds for as long as it
lasts. :class:`AuthRefusalLog` writes the first refusal of the process at ERROR, then at most one
WARNING per interval that says how many refusals it held back (those are logged at DEBUG).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

AUTH_REFUSED = "cannot connect to the controller at %s: %s"
AUTH_STILL_REFUSED = (
    "the controller at %s still refuses our credentials: %s (%d more refusal(s) in the last %.0f s "
    "logged at debug only)"
)


class LogThrottle:
    """Admits one event per ``interval`` seconds and counts the ones it held back in between."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self._held = 0

    def admit(self) -> int | None:
        """The number of events held back since the last admitted one, or ``None`` to hold this one."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held


class AuthRefusalLog:
    def __init__(self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic):
        self._log = logger
        self._throttle = LogThrottle(interval, clock)
        self._first = True

    def refused(self, url: str, reason: str) -> None:
        held = self._throttle.admit()
        if held is None:
            self._log.debug(AUTH_REFUSED, url, reason)
        elif self._first:
            self._log.error(AUTH_REFUSED, url, reason)
        else:
            self._log.warning(AUTH_STILL_REFUSED, url, reason, held, self._throttle.interval)
        self._first = False
