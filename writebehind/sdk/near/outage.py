"""What the near-cache feed says about a lost connection: one line, then one summary.

Each follower retries a lost connection with a backoff of at most a second,
and on a Redis Cluster there is a follower per partition: a line per failed
attempt was one per partition per second while a master was down, burying
everything else in the log. So the first failure of an outage is logged
(a warning naming the error), later ones are only counted, and when every
member that failed is connected again one line says how long the outage
lasted and how many attempts failed, on how many members (partitions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable


class OutageLog:
    """Shared by the members (followers) of one feed; not thread-safe (one event loop)."""

    def __init__(self, log: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._clock = clock
        self._since: float | None = None
        self._failures = 0
        self._down: set[Hashable] = set()
        self._hit: set[Hashable] = set()

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, member: Hashable, error: str) -> None:
        """``member`` lost its connection (or failed to connect) with ``error``."""
        self._failures += 1
        self._down.add(member)
        self._hit.add(member)
        if self._since is None:
            self._since = self._clock()
            self._log.warning(
                "near-cache feed lost (%s); reconnecting (further failures are counted "
                "until it is back)",
                error,
            )

    def connected(self, member: Hashable) -> None:
        """``member`` is connected (again); the summary once no member is down."""
        self._down.discard(member)
        if self._since is None or self._down:
            return
        self._log.warning(
            "near-cache feed reconnected after %.1f s (%d failed attempts, %d of its "
            "connections affected)",
            self._clock() - self._since,
            self._failures,
            len(self._hit),
        )
        self._since = None
        self._failures = 0
        self._hit.clear()
