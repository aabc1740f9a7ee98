"""How many batches the worker keeps in flight to MongoDB: a pure, adaptive limit.

No fixed number fits every server. SecantusDB serialises journaled writes, so
a second batch in flight only queues behind the first (its latency doubles,
the throughput stays); a replica set across a network spends most of a batch's
time on the wire, where several batches in flight multiply the throughput.
What tells them apart is the latency of a batch against the latency the same
server gives when nothing queues (the idea of TCP Vegas, and of the gradient
limits of Netflix's concurrency-limits library):

- **baseline**: the lowest latency of a full batch in the last ``window``
  seconds (nothing queued then);
- a batch slower than ``tolerance`` x the baseline means batches queue at the
  server: the limit is multiplied by ``decrease`` (once per round: batches that
  started before the last decrease cannot ask for another). ``tolerance`` x
  ``decrease`` is under 1, so a decrease lands below the point where batches
  queue, and the next round measures the no-queue latency again: the baseline
  cannot creep up with the limit;
- otherwise, when the limit was in use (as many batches in flight as it
  allows: an idle limit proves nothing), it grows by ``1 / limit`` per batch,
  about one per round of batches, as TCP's congestion avoidance does.

It settles near the server's bandwidth-delay product: the number of batches
that fit in one no-queue latency, plus a little, which is where the
throughput stops growing. A failed batch (a MongoDB error or outage) counts
as a congestion signal, but not as a latency: a quick refusal is no baseline.
Batches with fewer than ``min_records`` records give no latency either: a
small batch is fast because it is small, and would make every full batch look
queued. The clock is injected (seconds, monotonic), so all of this is tested
without servers or sleeps.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class AdaptiveLimit:
    """An AIMD limit on batches in flight, from 1 to ``max_limit``, driven by batch latency.

    ``tolerance`` is a ratio (latency over baseline), ``window`` is in seconds,
    ``decrease`` is the factor applied on congestion (0 < decrease < 1).
    """

    max_limit: int
    min_records: int = 1
    initial: int = 1
    tolerance: float = 1.5
    decrease: float = 0.6
    window: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _limit: float = field(init=False)
    _samples: deque[tuple[float, float]] = field(init=False, default_factory=deque)
    _last_decrease: float = field(init=False, default=-math.inf)

    def __post_init__(self) -> None:
        if self.max_limit < 1:
            raise ValueError(f"max_limit must be at least 1: {self.max_limit}")
        if not (0 < self.decrease < 1 < self.tolerance and self.tolerance * self.decrease < 1):
            raise ValueError("need 0 < decrease < 1 < tolerance, tolerance x decrease < 1")
        if self.window <= 0:
            raise ValueError(f"window must be over 0 seconds: {self.window}")
        self._limit = float(min(max(self.initial, 1), self.max_limit))

    @property
    def limit(self) -> int:
        """Batches allowed in flight now (an int from 1 to ``max_limit``)."""
        return max(1, min(self.max_limit, math.floor(self._limit)))

    @property
    def baseline(self) -> float | None:
        """The lowest full-batch latency in the window (seconds), or ``None`` without one."""
        return min((latency for _, latency in self._samples), default=None)

    def record(self, started: float, records: int, in_flight: int, *, ok: bool = True) -> int:
        """Account for a batch that started at ``started`` (clock seconds) and ended now.

        ``in_flight`` counts the batches in flight when it ended, itself
        included. Returns the new limit.
        """
        now = self.clock()
        latency = now - started
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()
        if not ok:
            self._congested(started, now)
            return self.limit
        if records < self.min_records:
            return self.limit
        baseline = self.baseline
        self._samples.append((now, latency))
        if baseline is not None and latency > self.tolerance * baseline:
            self._congested(started, now)
        elif in_flight >= self.limit:
            self._limit = min(float(self.max_limit), self._limit + 1 / self._limit)
        return self.limit

    def _congested(self, started: float, now: float) -> None:
        if started < self._last_decrease:
            return  # sent under the old limit: its round has been answered already
        self._limit = max(1.0, self._limit * self.decrease)
        self._last_decrease = now


@dataclass
class FixedLimit:
    """``--concurrency`` given: the same limit whatever happens."""

    fixed: int

    @property
    def limit(self) -> int:
        return self.fixed

    def record(self, started: float, records: int, in_flight: int, *, ok: bool = True) -> int:
        return self.fixed


def batch_limit(
    concurrency: int | None, max_concurrency: int, batch_size: int
) -> AdaptiveLimit | FixedLimit:
    """``--concurrency`` when given, else an adaptive limit up to ``--max-concurrency``.

    A batch counts as full (it gives a latency) from half of ``batch_size`` up.
    """
    if concurrency is not None:
        return FixedLimit(concurrency)
    return AdaptiveLimit(max_limit=max_concurrency, min_records=max(1, batch_size // 2))
