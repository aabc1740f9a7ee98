"""The staleness rule: when the near cache may be served (no IO).

The feed records the moment it last *knew* it was caught up: the time an
``XREAD`` was sent whose reply held every record added before it (no stream
came back full). Every write acknowledged before that moment has been applied
to the near cache. So a read at ``now`` may use the near cache only while
``now - caught_up_at <= max_stale``: whatever it returns is at most
``max_stale`` seconds older than the newest write.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class FeedClock:
    """When the feed was last known caught up (monotonic seconds; ``None``: never)."""

    caught_up_at: float | None = None

    def caught_up(self, sent_at: float) -> None:
        """An XREAD sent at ``sent_at`` returned everything; its records are applied."""
        if self.caught_up_at is None or sent_at > self.caught_up_at:
            self.caught_up_at = sent_at

    def lost(self) -> None:
        """The feed cannot vouch for anything any more (stopped, or resynced from empty)."""
        self.caught_up_at = None

    def behind(self, now: float) -> float | None:
        """Seconds since the feed was last caught up (``None``: never was)."""
        return None if self.caught_up_at is None else max(0.0, now - self.caught_up_at)

    def servable(self, now: float, max_stale: float) -> bool:
        """Whether a near-cache read at ``now`` keeps the ``max_stale`` (seconds) promise."""
        behind = self.behind(now)
        return behind is not None and behind <= max_stale
