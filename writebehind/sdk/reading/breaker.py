"""A circuit breaker for calls to Redis (no IO; the clock is injected).

Closed: calls go through and consecutive failures are counted. After
``failures`` in a row it opens: calls are refused at once (reads go to
MongoDB, writes raise) for ``cooldown`` seconds. Then one call at a time is
let through as a probe (half-open): its success closes the breaker, its
failure opens it for another cooldown. A probe that never reports (its
caller was cancelled) is replaced by another after a further cooldown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("failures must be >= 1 and cooldown > 0")
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self.state: State = "closed"
        self._count = 0
        self._since = 0.0  # when it opened, or when the current probe went out

    def allow(self) -> bool:
        """Whether a call may go to Redis now (in half-open: whether this call is the probe)."""
        if self.state == "closed":
            return True
        now = self._clock()
        if now - self._since < self.cooldown:
            return False
        self.state = "half_open"
        self._since = now
        return True

    def success(self) -> State:
        """Redis answered. Returns the new state."""
        self.state = "closed"
        self._count = 0
        return self.state

    def failure(self) -> State:
        """Redis did not answer. Returns the new state."""
        self._count += 1
        if self.state == "half_open" or self._count >= self.failures:
            self.state = "open"
            self._since = self._clock()
        return self.state
