"""The staleness rule: when the near cache may be served (no IO).

The feed records the moment it last *knew* it was caught up: the time an
``XREAD`` was sent whose reply held every record added before it (no stream
came back full), or, for an empty reply that took the whole ``BLOCK``, that
time plus the ``BLOCK`` (the server waited that long and nothing came: an idle
feed is not behind; ``follower.known_at``). Every write acknowledged before
that moment has been applied to the near cache. So a read at ``now`` may use
the near cache only while ``now - caught_up_at <= max_stale``: whatever it returns is at most
``max_stale`` seconds older than the newest write.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(slots=True)
class ClockGroup:
    """Per-partition clocks behind one ``FeedClock`` (a cluster feed reads each
    partition on its own): the feed is caught up as of the *oldest* partition's
    moment, and not at all while any partition's clock is ``None``."""

    overall: FeedClock
    parts: list[PartClock] = field(default_factory=list)

    def part(self) -> PartClock:
        """A new partition's clock (never caught up yet: the overall clock is ``None``)."""
        clock = PartClock(group=self)
        self.parts.append(clock)
        self.update()
        return clock

    def update(self) -> None:
        moments = [p.caught_up_at for p in self.parts]
        if not moments or any(m is None for m in moments):
            self.overall.caught_up_at = None
        else:
            self.overall.caught_up_at = min(m for m in moments if m is not None)


@dataclass(slots=True)
class PartClock(FeedClock):
    """One partition's ``FeedClock`` in a ``ClockGroup``; each change updates the group's."""

    group: ClockGroup | None = None

    def caught_up(self, sent_at: float) -> None:
        FeedClock.caught_up(self, sent_at)
        if self.group is not None:
            self.group.update()

    def lost(self) -> None:
        FeedClock.lost(self)
        if self.group is not None:
            self.group.update()
