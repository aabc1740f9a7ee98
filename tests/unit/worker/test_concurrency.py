"""Unit tests for writebehind.worker.concurrency: the adaptive limit on batches in flight.

Servers are modelled, not started: a batch's latency is a function of the
batches in flight, and the clock is a number the test moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from writebehind.settings import Settings
from writebehind.worker.concurrency import AdaptiveLimit, FixedLimit, batch_limit
from writebehind.worker.runner import Worker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drive(
    limit: AdaptiveLimit, clock: Clock, latency_of: Callable[[int], float], rounds: int
) -> list[int]:
    """Run ``rounds`` rounds of ``limit.limit`` batches each; the limit after every round."""
    seen = []
    for _ in range(rounds):
        in_flight = limit.limit
        started = clock.now
        latency = latency_of(in_flight)
        clock.now += latency
        for _ in range(in_flight):
            limit.record(started, 500, in_flight)
        seen.append(limit.limit)
    return seen


def serialised(in_flight: int) -> float:
    """A server that runs one batch at a time (SecantusDB's journaled writes): 40 ms each."""
    return 0.040 * in_flight


def far_away(in_flight: int) -> float:
    """20 ms on the wire plus 5 ms of server time per batch, the server one batch at a time.

    Closed loop: a batch waits for the others only once they outlast the wire.
    """
    return max(0.025, 0.005 * in_flight)


def test_a_server_that_serialises_keeps_the_limit_low() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=16, clock=clock)
    seen = drive(limit, clock, serialised, 200)
    assert max(seen[20:]) <= 2  # a second batch only queues; it never goes past 2


def test_a_distant_server_gets_batches_in_flight() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=16, clock=clock)
    seen = drive(limit, clock, far_away, 300)
    # Throughput stops growing at 5 in flight (25 ms / 5 ms): the limit must
    # reach it, and average at least 90% of the best throughput.
    assert max(seen) >= 5
    rate = [min(n, 5) / 5 for n in seen[100:]]
    assert sum(rate) / len(rate) >= 0.9, seen[100:]
    assert max(seen[100:]) < 16


def test_the_ceiling_holds() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=3, clock=clock)
    seen = drive(limit, clock, lambda n: 0.010, 100)  # no queueing at all
    assert max(seen) == 3 and seen[-1] == 3


def test_an_idle_limit_does_not_grow() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=16, initial=4, clock=clock)
    for _ in range(100):
        clock.now += 0.01
        limit.record(clock.now - 0.01, 500, in_flight=1)
    assert limit.limit == 4


def test_one_decrease_per_round() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=16, initial=8, clock=clock)
    started = clock.now
    clock.now += 0.010
    limit.record(started, 500, 8)  # the baseline: 10 ms
    # A round of eight slow batches, all sent before the first of them ended.
    started = clock.now
    clock.now += 0.050
    for _ in range(8):
        limit.record(started, 500, 8)
    assert limit.limit == 4  # 8.125 x 0.6 once, not 0.6 ** 8


def test_a_failure_decreases_but_gives_no_baseline() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=16, initial=10, clock=clock)
    limit.record(clock.now - 0.001, 500, 10, ok=False)  # a quick refusal
    assert limit.limit == 6
    assert limit.baseline is None


def test_small_batches_give_no_latency() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=16, initial=4, min_records=250, clock=clock)
    limit.record(clock.now - 0.0005, 3, 4)  # three records: fast because small
    assert limit.baseline is None
    limit.record(clock.now - 0.030, 500, 4)
    limit.record(clock.now - 0.031, 500, 4)
    assert limit.baseline == pytest.approx(0.030)
    assert limit.limit >= 4


def test_the_baseline_is_forgotten_after_the_window() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=16, window=30, clock=clock)
    limit.record(clock.now - 0.010, 500, 1)
    clock.now += 31
    limit.record(clock.now - 0.040, 500, 1)  # the server got slower for good
    assert limit.baseline == pytest.approx(0.040)


def test_the_limit_never_goes_below_one() -> None:
    clock = Clock()
    limit = AdaptiveLimit(max_limit=4, clock=clock)
    for _ in range(20):
        clock.now += 1
        limit.record(clock.now - 1, 500, 1, ok=False)
    assert limit.limit == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_limit": 0},
        {"max_limit": 4, "decrease": 1.0},
        {"max_limit": 4, "tolerance": 1.0},
        {"max_limit": 4, "tolerance": 2.0, "decrease": 0.5},  # lands exactly where queueing starts
        {"max_limit": 4, "window": 0},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        AdaptiveLimit(**kwargs)  # type: ignore[arg-type]


def test_a_given_concurrency_wins() -> None:
    fixed = batch_limit(3, 16, 500)
    assert isinstance(fixed, FixedLimit)
    assert fixed.record(0.0, 500, 3, ok=False) == 3 and fixed.limit == 3
    adaptive = batch_limit(None, 16, 500)
    assert isinstance(adaptive, AdaptiveLimit)
    assert adaptive.max_limit == 16 and adaptive.min_records == 250 and adaptive.limit == 1


def test_the_worker_takes_its_limit_from_the_settings() -> None:
    unused: Any = object()  # neither server is reached by a constructor
    fixed = Worker(Redis(), unused, Settings(concurrency=3, metrics_address=None))
    assert fixed.slots.limit == FixedLimit(3)
    adaptive = Worker(Redis(), unused, Settings(max_concurrency=5, metrics_address=None))
    assert isinstance(adaptive.slots.limit, AdaptiveLimit)
    assert adaptive.slots.limit.max_limit == 5
