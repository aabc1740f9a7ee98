"""The worker's Redis side: reading, claiming, acknowledging, dead-lettering, trimming.

Each method is one or two round trips for a whole batch; nothing here is per
record on the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError, ResponseError

from writebehind.core.groups import consumer_group
from writebehind.core.keys import KeySpace
from writebehind.core.letter_format import failure_fields, letter_fields
from writebehind.core.replies import as_text, is_busy_group, is_no_group, is_no_such_key
from writebehind.core.script_calls import ScriptCall, call_script, run_scripts
from writebehind.core.scripts import Scripts, invalidation_args
from writebehind.sink.classify import ErrorInfo
from writebehind.worker.counters import WorkerCounters
from writebehind.worker.settings import WorkerSettings

log = structlog.get_logger("writebehind.worker")

Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class LetterToMove:
    """A record on its way to the dead-letter stream, with why."""

    entry_id: str
    collection: str
    op: str
    body: bytes
    version: str
    error: ErrorInfo
    deliveries: int
    cache_key: str | None
    shard_key: bytes = b""
    """The record's ``sk`` field, kept so a re-drive targets the same shard."""


@dataclass(frozen=True, slots=True)
class Persisted:
    """A document whose newest record of the batch is in MongoDB, and every entry it covers."""

    cache_key: str
    version: str
    entry_ids: Sequence[str]


@dataclass(frozen=True, slots=True)
class Trimmed:
    removed: int
    held_by: str | None
    """Another consumer group whose unread or pending entries kept history past retention."""


class PartitionStreams:
    """Stream operations of one worker (consumer) across its partitions."""

    def __init__(
        self, redis: Redis, settings: WorkerSettings, stats: WorkerCounters, keys: KeySpace
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.stats = stats
        self.keys = keys
        self.scripts = Scripts(redis)

    @property
    def group(self) -> str:
        return self.settings.group

    @property
    def consumer(self) -> str:
        return self.settings.consumer

    async def ensure_group(self, partition: int) -> bool:
        """Create the consumer group from the start of the stream; True if it was missing."""
        stream = self.keys.stream(partition)
        try:
            await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
        except OutOfMemoryError:
            # Redis at maxmemory refuses XGROUP CREATE even when the group exists.
            if await consumer_group(self.redis, stream, self.group) is not None:
                return False
            raise
        except ResponseError as exc:
            if is_busy_group(exc):
                return False
            raise
        return True

    async def _recreate_group(self, partition: int) -> None:
        # Stream or group vanished (Redis restarted without persistence, or
        # someone deleted it). Start again from the beginning of whatever is
        # there: replaying is safe, skipping is not.
        if await self.ensure_group(partition):
            self.stats.group_recreated += 1
            log.error(
                "consumer_group_recreated",
                partition=partition,
                group=self.group,
                hint="records not yet persisted may have been lost with Redis; check its "
                "persistence and consider `writebehind replay`",
            )

    async def read(self, partition: int, count: int, block_ms: int) -> list[Entry]:
        stream = self.keys.stream(partition)
        try:
            reply = await self.redis.xreadgroup(
                self.group, self.consumer, {stream: ">"}, count=count, block=block_ms
            )
        except ResponseError as exc:
            if not is_no_group(exc):
                raise
            await self._recreate_group(partition)
            return []
        streams: Any = reply or []
        entries: list[Entry] = [e for _, batch in streams for e in batch]
        self.stats.read += len(entries)
        return entries

    async def claim(self, partition: int, start: str, count: int) -> tuple[str, list[Entry]]:
        """One XAUTOCLAIM step; returns the next cursor (``"0-0"`` when done) and entries."""
        stream = self.keys.stream(partition)
        try:
            cursor, entries, deleted = await self.redis.xautoclaim(
                stream, self.group, self.consumer, self.settings.claim_idle_ms, start, count=count
            )
        except ResponseError as exc:
            if not is_no_group(exc):
                raise
            await self._recreate_group(partition)
            return "0-0", []
        if deleted:
            # Trimmed or deleted while still pending: Redis dropped them from the
            # pending list. Their records are gone; say so, never silently.
            self.stats.deleted_while_pending += len(deleted)
            log.error(
                "pending_entries_deleted",
                partition=partition,
                count=len(deleted),
                ids=[d.decode() for d in deleted[:20]],
            )
        live = [(eid, fields) for eid, fields in entries if fields is not None]
        self.stats.claimed += len(live)
        self.stats.read += len(live)
        return as_text(cursor), live

    async def delivery_counts(self, partition: int, ids: Sequence[bytes]) -> dict[bytes, int]:
        if not ids:
            return {}
        rows = await self.redis.xpending_range(
            self.keys.stream(partition),
            self.group,
            min=min(ids, key=_id_key),
            max=max(ids, key=_id_key),
            count=len(ids) * 2 + 10,
            consumername=self.consumer,
        )
        return {row["message_id"]: int(row["times_delivered"]) for row in rows}  # type: ignore[misc]

    async def heartbeat(self, partition: int, ids: Sequence[str]) -> None:
        """Reset the idle time of entries still in progress, so no one claims them.

        JUSTID leaves the delivery counter alone, so a long MongoDB outage never
        pushes good records towards the dead-letter limit.
        """
        if not ids:
            return
        await self.redis.xclaim(
            self.keys.stream(partition),
            self.group,
            self.consumer,
            min_idle_time=self.settings.claim_idle_ms // 4,
            message_ids=list(ids),
            justid=True,
        )

    async def finish(
        self, partition: int, persisted: Sequence[Persisted], dead: Sequence[LetterToMove]
    ) -> None:
        """Acknowledge persisted records (with clean TTLs) and move dead letters, pipelined."""
        if not persisted and not dead:
            return
        stream = self.keys.stream(partition)
        # run_scripts: survives an emptied script cache between a pipeline's attempts.
        calls: list[ScriptCall] = []
        if persisted:
            ids = [eid for p in persisted for eid in p.entry_ids]
            calls.append(
                ScriptCall(
                    self.scripts.ack_and_clean,
                    [stream, *(p.cache_key for p in persisted)],
                    [self.group, self.settings.clean_ttl, *(p.version for p in persisted), *ids],
                )
            )
        for letter in dead:
            calls.append(
                ScriptCall(
                    self.scripts.dead_letter,
                    [
                        stream,
                        self.keys.dead_letters(partition),
                        letter.cache_key or f"{stream}:none",
                        self.keys.dead_letter_sources(partition),
                        self.keys.invalidations(partition),
                    ],
                    [
                        self.group,
                        letter.entry_id,
                        letter.version if letter.cache_key else "",
                        *invalidation_args(
                            self.keys.cache_names(partition, letter.cache_key)
                            if letter.cache_key
                            else None
                        ),
                        *dead_letter_fields(letter, partition, self.consumer),
                    ],
                )
            )
        replies, _ = await run_scripts(self.redis, calls)
        self.stats.persisted += sum(len(p.entry_ids) for p in persisted)
        # A letter whose entry was no longer pending (moved already) is not moved twice.
        self.stats.dead_lettered += sum(int(r) for r in replies[len(replies) - len(dead) :])

    async def trim(self, partition: int) -> Trimmed:
        cutoff_ms = int((time.time() - self.settings.retention) * 1000)
        if cutoff_ms <= 0:
            return Trimmed(0, None)
        removed, holder = await call_script(
            self.redis,
            self.scripts.trim,
            [self.keys.stream(partition)],
            [f"{cutoff_ms}-0", self.group],
        )
        self.stats.trimmed += int(removed)
        return Trimmed(int(removed), as_text(holder) or None)

    async def prune_consumers(self, partition: int) -> list[str]:
        try:
            removed = await call_script(
                self.redis,
                self.scripts.prune_consumers,
                [self.keys.stream(partition)],
                [self.group, self.settings.consumer_idle_ms, self.consumer],
            )
        except ResponseError as exc:
            if is_no_group(exc) or is_no_such_key(exc):
                return []
            raise
        names = [as_text(n) for n in removed]
        if names:
            log.info("consumers_removed", partition=partition, consumers=names)
        return names


def _id_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


def dead_letter_fields(letter: LetterToMove, partition: int, consumer: str) -> list[Any]:
    """The letter's fields (``core.letter_format``); the worker and replay both write them."""
    failure = failure_fields(
        kind=letter.error.kind.value,
        code=letter.error.code,
        message=letter.error.message,
        deliveries=letter.deliveries,
        failed_at_ms=int(time.time() * 1000),
        consumer=consumer,
    )
    return letter_fields(
        op=letter.op,
        collection=letter.collection,
        body=letter.body,
        version=letter.version,
        source_id=letter.entry_id,
        partition=partition,
        failure=failure,
        shard_key=letter.shard_key,
    )
