"""When a MongoDB outage is worth a log line: at once, then at a steady interval, then its end.

Pure (the clock is passed in): ``OutageTracker`` turns each write attempt's
outcome, from any partition, into at most one ``Notice`` to log. The worker
logs the first failure at once (server, error, records waiting), a summary
every ``interval`` seconds while the outage lasts (one line for all
partitions, however many retry), and one line when writes succeed again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Kind(enum.Enum):
    STARTED = "mongodb_unavailable"
    ONGOING = "mongodb_still_unavailable"
    ENDED = "mongodb_recovered"


@dataclass(frozen=True, slots=True)
class Notice:
    kind: Kind
    error: str
    waiting: int
    """Records waiting to be written, over every partition that reported."""
    failing_for: float
    """Seconds since the first failed attempt of this outage."""
    attempts: int
    """Failed attempts since the outage began (all partitions)."""


@dataclass(slots=True)
class OutageTracker:
    """Worker-wide state of MongoDB writes; ``interval`` is in seconds."""

    interval: float = 30.0
    started_at: float | None = None
    last_notice: float = 0.0
    last_success: float | None = None
    attempts: int = 0
    error: str = ""
    waiting: dict[int, int] = field(default_factory=dict)

    def failed(self, now: float, partition: int, error: str, waiting: int) -> Notice | None:
        """A write attempt of ``partition`` failed transiently; ``waiting`` records retry."""
        self.attempts += 1
        self.error = error
        self.waiting[partition] = waiting
        if self.started_at is None:
            self.started_at = self.last_notice = now
            return self._notice(Kind.STARTED, now)
        if now - self.last_notice >= self.interval:
            self.last_notice = now
            return self._notice(Kind.ONGOING, now)
        return None

    def succeeded(self, now: float, partition: int) -> Notice | None:
        """A write attempt of ``partition`` reached MongoDB; ends the outage if one was on."""
        self.last_success = now
        self.waiting.pop(partition, None)
        if self.started_at is None:
            return None
        notice = self._notice(Kind.ENDED, now)
        self.started_at, self.attempts, self.waiting = None, 0, {}
        return notice

    def failing_for(self, now: float) -> float:
        """Seconds the current outage has lasted; 0 when writes succeed."""
        return 0.0 if self.started_at is None else now - self.started_at

    def _notice(self, kind: Kind, now: float) -> Notice:
        assert self.started_at is not None
        return Notice(
            kind, self.error, sum(self.waiting.values()), now - self.started_at, self.attempts
        )
