"""``writebehind stats``: what the streams, the consumer group and the dead letters hold.

Per partition: stream length, pending entries (delivered, not acknowledged),
lag (not yet delivered), the age of the oldest pending entry, the consumers
with their pending counts and idle times, and the dead-letter depth. A stream
or group that does not exist yet reports zeros. Ages are measured against the
Redis clock, the clock the entry ids come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from writebehind.core.groups import consumer_group
from writebehind.core.keys import KeySpace
from writebehind.core.replies import as_text, is_no_group
from writebehind.core.version import Version

LAG_COUNT_CAP = 10_000
"""When Redis cannot say the lag, count at most this many undelivered entries."""


@dataclass(frozen=True, slots=True)
class ConsumerStats:
    name: str
    pending: int
    idle_ms: int


@dataclass(frozen=True, slots=True)
class PartitionStats:
    partition: int
    stream_length: int = 0
    pending: int = 0
    lag: int = 0
    lag_exact: bool = True
    """False when Redis could not say and counting stopped at ``LAG_COUNT_CAP``."""
    oldest_pending_id: str | None = None
    oldest_pending_age: float | None = None
    """Seconds between the oldest pending entry's id time and now."""
    last_delivered_id: str | None = None
    group_exists: bool = False
    dead_letters: int = 0
    consumers: tuple[ConsumerStats, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "stream_length": self.stream_length,
            "pending": self.pending,
            "lag": self.lag,
            "lag_exact": self.lag_exact,
            "oldest_pending_id": self.oldest_pending_id,
            "oldest_pending_age_s": _round(self.oldest_pending_age),
            "last_delivered_id": self.last_delivered_id,
            "group_exists": self.group_exists,
            "dead_letters": self.dead_letters,
            "consumers": [
                {"name": c.name, "pending": c.pending, "idle_ms": c.idle_ms} for c in self.consumers
            ],
        }


@dataclass(frozen=True, slots=True)
class ConsumerSummary:
    """One consumer across the partitions it has read."""

    name: str
    pending: int
    idle_ms: int
    """The shortest idle time over its partitions: how long since it last did anything."""
    partitions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StreamStats:
    group: str
    partitions: tuple[PartitionStats, ...]
    now_ms: int
    consumers: tuple[ConsumerSummary, ...] = field(default=())

    @property
    def pending(self) -> int:
        return sum(p.pending for p in self.partitions)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def lag_exact(self) -> bool:
        return all(p.lag_exact for p in self.partitions)

    @property
    def dead_letters(self) -> int:
        return sum(p.dead_letters for p in self.partitions)

    @property
    def stream_length(self) -> int:
        return sum(p.stream_length for p in self.partitions)

    @property
    def oldest_pending_age(self) -> float | None:
        ages = [p.oldest_pending_age for p in self.partitions if p.oldest_pending_age is not None]
        return max(ages, default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "pending": self.pending,
            "lag": self.lag,
            "lag_exact": self.lag_exact,
            "dead_letters": self.dead_letters,
            "stream_length": self.stream_length,
            "oldest_pending_age_s": _round(self.oldest_pending_age),
            "consumers": [
                {
                    "name": c.name,
                    "pending": c.pending,
                    "idle_ms": c.idle_ms,
                    "partitions": list(c.partitions),
                }
                for c in self.consumers
            ],
            "partitions": [p.as_dict() for p in self.partitions],
            "time_ms": self.now_ms,
        }


# -- pure helpers -------------------------------------------------------------


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def age_seconds(entry_id: str, now_ms: int) -> float:
    """Seconds from the time in a stream entry id to ``now_ms`` (never negative)."""
    return max(0, now_ms - Version.parse(entry_id).ms) / 1000


def summarise_consumers(partitions: Sequence[PartitionStats]) -> tuple[ConsumerSummary, ...]:
    """Each consumer once: pending summed, idle the shortest, sorted by name."""
    found: dict[str, list[tuple[int, ConsumerStats]]] = {}
    for p in partitions:
        for c in p.consumers:
            found.setdefault(c.name, []).append((p.partition, c))
    return tuple(
        ConsumerSummary(
            name,
            sum(c.pending for _, c in rows),
            min(c.idle_ms for _, c in rows),
            tuple(p for p, _ in rows),
        )
        for name, rows in sorted(found.items())
    )


# -- reading Redis ------------------------------------------------------------


async def collect(
    redis: Redis, keys: KeySpace, group: str, *, lag_count_cap: int = LAG_COUNT_CAP
) -> StreamStats:
    """Read every partition's numbers; a missing stream or group reads as zeros.

    Raises ``redis.exceptions.RedisError`` when Redis fails.
    """
    seconds, micros = await redis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    partitions = tuple(
        [
            await _partition(redis, keys, group, p, now_ms, lag_count_cap)
            for p in range(keys.partitions)
        ]
    )
    return StreamStats(group, partitions, now_ms, summarise_consumers(partitions))


async def _partition(
    redis: Redis, keys: KeySpace, group: str, partition: int, now_ms: int, cap: int
) -> PartitionStats:
    stream = keys.stream(partition)
    pipe = redis.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xlen(keys.dead_letters(partition))
    length, dead = (int(n) for n in await pipe.execute())
    base = PartitionStats(partition, stream_length=length, lag=length, dead_letters=dead)
    if length == 0 and not await redis.exists(stream):
        return PartitionStats(partition, dead_letters=dead)
    info = await consumer_group(redis, stream, group)
    if info is None:
        # No worker has read this partition yet: everything in it is undelivered.
        return base
    last_delivered = as_text(info["last-delivered-id"])
    summary: Any = await redis.xpending(stream, group)
    pending = int(summary["pending"])
    oldest = as_text(summary["min"]) if pending and summary["min"] is not None else None
    lag, exact = await _lag(redis, stream, info, last_delivered, length, cap)
    return PartitionStats(
        partition,
        stream_length=length,
        pending=pending,
        lag=lag,
        lag_exact=exact,
        oldest_pending_id=oldest,
        oldest_pending_age=None if oldest is None else age_seconds(oldest, now_ms),
        last_delivered_id=last_delivered,
        group_exists=True,
        dead_letters=dead,
        consumers=await _consumers(redis, stream, group),
    )


async def _lag(
    redis: Redis,
    stream: str,
    info: dict[str, Any],
    last_delivered: str,
    length: int,
    cap: int,
) -> tuple[int, bool]:
    """The group's lag; Redis reports none after deletions inside the stream, so count."""
    if info.get("lag") is not None:
        return int(info["lag"]), True
    first: Any = await redis.xrange(stream, "-", "+", count=1)
    if not first or Version.parse(as_text(first[0][0])) > Version.parse(last_delivered):
        return length, True
    counted, start = 0, "(" + last_delivered
    while True:
        want = min(1000, cap - counted)
        if want == 0:
            # Stopped at the cap: exact only if nothing is left after it.
            more: Any = await redis.xrange(stream, start, "+", count=1)
            return counted, not more
        rows: Any = await redis.xrange(stream, start, "+", count=want)
        counted += len(rows)
        if len(rows) < want:
            return counted, True
        start = "(" + as_text(rows[-1][0])


async def _consumers(redis: Redis, stream: str, group: str) -> tuple[ConsumerStats, ...]:
    try:
        rows: Any = await redis.xinfo_consumers(stream, group)
    except ResponseError as exc:
        if is_no_group(exc):
            return ()
        raise
    return tuple(
        sorted(
            (ConsumerStats(as_text(r["name"]), int(r["pending"]), int(r["idle"])) for r in rows),
            key=lambda c: c.name,
        )
    )
