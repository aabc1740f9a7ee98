"""The circuit breaker for Redis calls, on an injected clock (seconds)."""

from __future__ import annotations

import pytest

from writebehind.sdk.reading.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(3, 5.0, Clock())
    breaker.failure()
    breaker.failure()
    breaker.success()  # an answer resets the count
    breaker.failure()
    assert breaker.failure() == "closed"
    assert breaker.allow()
    assert breaker.failure() == "open"
    assert not breaker.allow()


def test_one_probe_after_the_cooldown_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failure()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # the probe
    assert breaker.state == "half_open"
    assert not breaker.allow()  # only one at a time
    assert breaker.success() == "closed"
    assert breaker.allow()


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(5, 2.0, clock)
    for _ in range(5):
        breaker.failure()
    clock.now += 2.0
    assert breaker.allow()
    assert breaker.failure() == "open"
    clock.now += 1.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()


def test_a_probe_that_never_reports_is_replaced() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, clock)
    breaker.failure()
    clock.now += 1.0
    assert breaker.allow()  # its caller is then cancelled: no success, no failure
    clock.now += 0.5
    assert not breaker.allow()
    clock.now += 0.5
    assert breaker.allow()


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="failures"):
        CircuitBreaker(0, 1.0)
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreaker(1, 0)
