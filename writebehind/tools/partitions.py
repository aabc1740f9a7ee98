"""``writebehind partitions set N``: change the partition count of a drained, stopped deployment.

A document's partition is ``hash mod P``, so changing P moves documents to
other streams and cache keys. That is safe only when nothing is in flight:
every record delivered and acknowledged (no lag, nothing pending: MongoDB holds
every write), no worker reading (no consumer active within ``worker_idle``)
and no producer writing (no record newer than ``quiet``). Then the cache
entries of the old layout are deleted (they are clean, hence in MongoDB; left
behind, a later change back could serve them) and the new count recorded,
compare-and-set against the old one. Old streams keep their history; replay
reads partitions below the new count only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from writebehind.core.errors import ResizeRefused
from writebehind.core.keys import MAX_PARTITIONS, KeySpace
from writebehind.core.replies import as_text
from writebehind.core.script_calls import call_script
from writebehind.core.version import Version
from writebehind.tools.durations import compact
from writebehind.tools.stream_stats import StreamStats, collect

DELETE_BATCH = 500
"""Cache entries deleted per call (all of one partition, so of one hash slot)."""

# KEYS: the meta hash; ARGV: old count, new count. Compare-and-set, so two
# operators (or a producer recording the count for the first time) cannot race.
SET_COUNT = """
local stored = redis.call('HGET', KEYS[1], 'partitions')
if stored ~= ARGV[1] then return stored or '' end
redis.call('HSET', KEYS[1], 'partitions', ARGV[2])
return 'ok'
"""


@dataclass(frozen=True, slots=True)
class ResizeReport:
    old: int
    new: int
    entries_deleted: int
    retired_history: int
    """Records left in partitions at or above the new count: replay no longer reads them."""
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "cache_entries_deleted": self.entries_deleted,
            "retired_history_records": self.retired_history,
            "dry_run": self.dry_run,
        }


def resize_problems(
    stats: StreamStats,
    new: int,
    newest_age_ms: Sequence[int | None],
    *,
    worker_idle_ms: int,
    quiet_ms: int,
) -> list[str]:
    """Why the count cannot change now (empty: it can). Pure.

    ``newest_age_ms[p]``: milliseconds since partition ``p``'s newest record
    (None: an empty stream).
    """
    old = len(stats.partitions)
    problems: list[str] = []
    if not 1 <= new <= MAX_PARTITIONS:
        problems.append(f"the partition count must be from 1 to {MAX_PARTITIONS}, not {new}")
    if new == old:
        problems.append(f"the deployment already has {old} partitions")
    for p in stats.partitions:
        if p.pending or p.lag:
            problems.append(
                f"partition {p.partition} has {p.pending} pending and {p.lag} undelivered "
                "records: let the workers drain it"
            )
        if p.partition >= new and p.dead_letters:
            problems.append(
                f"partition {p.partition} holds {p.dead_letters} dead letters: re-drive or "
                "purge them first (the partition will no longer exist)"
            )
    for c in stats.consumers:
        if c.idle_ms < worker_idle_ms:
            problems.append(
                f"consumer {c.name!r} was active {compact(c.idle_ms / 1000)} ago: stop every worker"
            )
    young = [age for age in newest_age_ms if age is not None and age < quiet_ms]
    if young:
        problems.append(
            f"a record was written {compact(min(young) / 1000)} ago: stop every producer"
        )
    return problems


async def newest_ages(redis: Redis, keys: KeySpace, now_ms: int) -> list[int | None]:
    """Milliseconds since each partition's newest record (by its id's time); None if empty."""
    ages: list[int | None] = []
    for p in range(keys.partitions):
        rows: Any = await redis.xrevrange(keys.stream(p), count=1)
        ages.append(now_ms - Version.parse(as_text(rows[0][0])).ms if rows else None)
    return ages


async def delete_cache_entries(redis: Redis, keys: KeySpace) -> int:
    """Delete every cache entry of every partition of ``keys``; returns how many."""
    deleted = 0
    for p in range(keys.partitions):
        prefix = keys.cache(p, "", "")[: -len("0::s")]  # "{wb:p3}:doc:"
        batch: list[Any] = []
        async for key in redis.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= DELETE_BATCH:
                deleted += int(await redis.unlink(*batch))
                batch = []
        if batch:
            deleted += int(await redis.unlink(*batch))
    return deleted


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


async def resize(
    redis: Redis,
    keys: KeySpace,
    group: str,
    new: int,
    *,
    worker_idle: float,
    quiet: float,
    dry_run: bool = False,
) -> ResizeReport:
    """Check, then (unless ``dry_run``) delete the old layout's cache entries and record ``new``.

    ``keys`` carries the recorded (old) count; ``worker_idle`` and ``quiet`` are
    seconds. Raises ``ResizeRefused`` listing every problem, with nothing
    changed; ``redis.exceptions.RedisError`` when Redis fails.
    """
    stats = await collect(redis, keys, group)
    ages = await newest_ages(redis, keys, stats.now_ms)
    problems = resize_problems(
        stats, new, ages, worker_idle_ms=int(worker_idle * 1000), quiet_ms=int(quiet * 1000)
    )
    if problems:
        raise ResizeRefused(problems)
    retired = sum(p.stream_length for p in stats.partitions if p.partition >= new)
    if dry_run:
        return ResizeReport(keys.partitions, new, 0, retired, True)
    deleted = await delete_cache_entries(redis, keys)
    script = redis.register_script(SET_COUNT)
    reply = as_text(await call_script(redis, script, [keys.meta], [keys.partitions, new]))
    if reply != "ok":
        raise ResizeRefused([f"the recorded count changed meanwhile (now {reply or 'none'})"])
    return ResizeReport(keys.partitions, new, deleted, retired, False)
