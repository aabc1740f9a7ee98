"""One batch from read to acknowledgement: coalesce, write, retry, dead-letter, ack."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import structlog
from bson.codec_options import CodecOptions
from redis.exceptions import ResponseError

from writebehind.core.backoff import Backoff, retry
from writebehind.core.codec import DEFAULT_CODEC_OPTIONS
from writebehind.core.deployment import recorded_codec
from writebehind.core.errors import PrimaryChanged
from writebehind.core.keys import KeySpace
from writebehind.core.replies import field_text, is_transient
from writebehind.core.witness import Witness, confirm, newest_entry
from writebehind.sink.bulk import Fence, MongoSink
from writebehind.sink.classify import ErrorInfo, Failure
from writebehind.sink.plan import DocumentWrites, Malformed, coalesce, decode_entries
from writebehind.sink.settle import settle
from writebehind.worker.counters import WorkerCounters
from writebehind.worker.settings import WorkerSettings
from writebehind.worker.stream import Entry, LetterToMove, PartitionStreams, Persisted

log = structlog.get_logger("writebehind.worker")


class BatchProcessor:
    """Applies one partition's batch; returns only when every record is acked or dead-lettered.

    Transient MongoDB failures are retried with backoff for as long as they
    last; the records stay pending meanwhile and their idle time is refreshed
    so that no other worker claims them. Cancellation (drain deadline, second
    signal) leaves whatever is unfinished pending, never acknowledged. So does
    a Redis primary replaced after the batch was read by one that lacks its
    newest record (``core.witness``): the batch is dropped unwritten, and the
    records the new primary holds are claimed from it once idle.
    """

    def __init__(
        self,
        streams: PartitionStreams,
        sink: MongoSink,
        settings: WorkerSettings,
        stats: WorkerCounters,
        keys: KeySpace,
    ) -> None:
        self.streams = streams
        self.sink = sink
        self.settings = settings
        self.stats = stats
        self.keys = keys
        self.on_progress: Callable[[int], None] = lambda partition: None
        """Called on every write attempt: a loop retrying is alive, not stuck."""
        self.on_attempt: Callable[[int, ErrorInfo | None, int], None] = lambda p, e, n: None
        """Called after every write attempt with (partition, the transient error or None
        when MongoDB answered, records left to retry): the worker's outage reports."""
        self.codec: CodecOptions[Any] | None = None

    async def _codec(self) -> CodecOptions[Any]:
        """The codec options producers recorded; asked again until they have (never changed)."""
        if self.codec is None:
            recorded = await recorded_codec(self.streams.redis, self.keys)
            if recorded is not None:
                self.codec = self.sink.codec_options = recorded
        return self.codec or DEFAULT_CODEC_OPTIONS

    async def process(
        self, partition: int, entries: Sequence[Entry], deliveries: dict[bytes, int] | None = None
    ) -> None:
        self.stats.batches += 1
        with structlog.contextvars.bound_contextvars(batch=self.stats.batches):
            await self._process(partition, entries, deliveries or {})

    async def _process(
        self, partition: int, entries: Sequence[Entry], deliveries: dict[bytes, int]
    ) -> None:
        pendings, malformed = decode_entries(entries, await self._codec())
        dead = [self._malformed_letter(partition, m, deliveries) for m in malformed]
        over_limit = {eid for eid, n in deliveries.items() if n > self.settings.max_deliveries}
        if over_limit:
            kept = []
            for p in pendings:
                if p.entry_id.encode() in over_limit:
                    error = ErrorInfo(
                        Failure.PERMANENT,
                        None,
                        f"delivered {deliveries[p.entry_id.encode()]} times "
                        f"(max_deliveries={self.settings.max_deliveries})",
                    )
                    dead.append(self._letter(partition, p.record.collection, p, error, deliveries))
                else:
                    kept.append(p)
            pendings = kept
        groups = coalesce(pendings)
        self.stats.coalesced += len(pendings) - len(groups)
        if dead:
            await self._finish(partition, [], dead)
        if groups:
            witness = newest_entry(self.keys.stream(partition), entries)
            await self._apply(partition, groups, deliveries, witness)

    async def _apply(
        self,
        partition: int,
        groups: list[DocumentWrites],
        deliveries: dict[bytes, int],
        witness: Witness,
    ) -> None:
        # The heartbeat runs beside the writes for the whole batch, so entries
        # stay ours however long a single MongoDB call blocks (server selection
        # during an outage can take longer than a third of claim_idle_ms).
        in_flight: list[list[DocumentWrites]] = [groups]
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeat_loop, partition, in_flight)
            try:
                await self._apply_until_settled(partition, in_flight, deliveries, witness)
            except PrimaryChanged as exc:
                left = sum(len(g.entry_ids()) for g in in_flight[0])
                self.stats.left_for_new_primary += left
                log.warning(
                    "batch_left_pending_primary_changed",
                    partition=partition,
                    records=left,
                    error=str(exc),
                    hint="the new primary's copies of these records, if it has them, are "
                    "claimed once idle; the others were lost with the old primary",
                )
            tg.cancel_scope.cancel()

    async def _heartbeat_loop(self, partition: int, in_flight: list[list[DocumentWrites]]) -> None:
        interval = self.settings.claim_idle_ms / 3000
        while True:
            await anyio.sleep(interval)
            await self._heartbeat(partition, in_flight[0])

    async def _apply_until_settled(
        self,
        partition: int,
        in_flight: list[list[DocumentWrites]],
        deliveries: dict[bytes, int],
        witness: Witness,
    ) -> None:
        """Raises ``PrimaryChanged``: the rest of the batch must stay pending, unwritten."""
        backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap)
        outstanding = in_flight[0]

        async def fence() -> None:
            await confirm(self.streams.redis, [witness])

        while outstanding:
            self.on_progress(partition)
            results = await self._write_all(outstanding, fence)
            settled = settle(outstanding, results)
            persisted = [self._persisted(partition, group) for group in settled.persisted]
            dead = [
                self._letter(partition, poison.record.collection, poison, error, deliveries)
                for poison, error in settled.refused
            ]
            retry, transient = settled.retry, settled.transient
            self.on_attempt(partition, transient, len(retry))
            await self._finish(partition, persisted, dead)
            outstanding = in_flight[0] = retry
            if transient is None:
                backoff.reset()
                continue
            self.stats.retried += len(retry)
            delay = backoff.next_delay()
            log.debug(
                "mongodb_write_retry",
                partition=partition,
                records=len(retry),
                error=transient.message[:300],
                code=transient.code,
                delay=round(delay, 3),
                attempt=backoff.failures,
            )
            await anyio.sleep(delay)

    async def _write_all(
        self, groups: list[DocumentWrites], fence: Fence
    ) -> list[ErrorInfo | None]:
        """One bulk_write per collection in the batch, run side by side.

        Raises ``PrimaryChanged`` (from ``fence``) once every write has ended.
        """
        by_collection: dict[str, list[int]] = defaultdict(list)
        for index, group in enumerate(groups):
            by_collection[group.collection].append(index)
        results: list[ErrorInfo | None] = [None] * len(groups)
        fenced: list[PrimaryChanged] = []

        async def write(name: str, indexes: list[int]) -> None:
            try:
                outcome = await self.sink.write(name, [groups[i].newest for i in indexes], fence)
            except PrimaryChanged as exc:
                fenced.append(exc)  # raised below, not wrapped in the task group's group
                return
            for index, result in zip(indexes, outcome, strict=True):
                results[index] = result

        async with anyio.create_task_group() as tg:
            for name, indexes in by_collection.items():
                tg.start_soon(write, name, indexes)
        if fenced:
            raise fenced[0]
        return results

    async def _finish(
        self, partition: int, persisted: list[Persisted], dead: list[LetterToMove]
    ) -> None:
        """Ack and dead-letter; if Redis is unreachable, wait for it (MongoDB has the data)."""

        def logged(exc: BaseException, delay: float) -> None:
            log.warning("redis_ack_retry", partition=partition, error=str(exc), delay=delay)

        await retry(
            lambda: self.streams.finish(partition, persisted, dead),
            transient=is_transient,
            backoff=Backoff(self.settings.backoff_base, self.settings.backoff_cap),
            on_retry=logged,
        )

    async def _heartbeat(self, partition: int, groups: list[DocumentWrites]) -> None:
        if not groups:
            return
        # Best effort: if it fails, the worst case is another worker claiming and
        # applying the same records too, which the version guard makes harmless.
        try:
            await self.streams.heartbeat(partition, [e for g in groups for e in g.entry_ids()])
        except Exception as exc:
            if not (is_transient(exc) or isinstance(exc, ResponseError)):
                raise
            log.warning("heartbeat_failed", partition=partition, error=str(exc))

    def _persisted(self, partition: int, group: DocumentWrites) -> Persisted:
        newest = group.newest
        return Persisted(
            cache_key=self.keys.cache(partition, group.collection, newest.doc_id),
            # The record's (original) version, which is what the cache entry holds;
            # a replayed copy has another entry id but the same version.
            version=str(newest.version),
            entry_ids=group.entry_ids(),
        )

    def _letter(
        self,
        partition: int,
        collection: str,
        pending: Any,
        error: ErrorInfo,
        deliveries: dict[bytes, int],
    ) -> LetterToMove:
        log.error(
            "record_dead_lettered",
            partition=partition,
            collection=collection,
            entry_id=pending.entry_id,
            code=error.code,
            error=error.message[:300],
        )
        return LetterToMove(
            entry_id=pending.entry_id,
            collection=collection,
            op=pending.record.op,
            body=pending.record.body,
            version=str(pending.version),
            error=error,
            deliveries=deliveries.get(pending.entry_id.encode(), 1),
            cache_key=self.keys.cache(partition, collection, pending.doc_id),
            shard_key=pending.record.shard_key,
        )

    def _malformed_letter(
        self, partition: int, item: Malformed, deliveries: dict[bytes, int]
    ) -> LetterToMove:
        log.error("malformed_record", entry_id=item.entry_id, reason=item.reason)
        fields = item.fields
        # The record names its cache entry: settle it, though the body cannot be read.
        named = field_text(fields, b"k")
        cache_key = named if self.keys.is_cache_key(partition, named) else None
        return LetterToMove(
            entry_id=item.entry_id,
            collection=field_text(fields, b"c"),
            op=field_text(fields, b"op"),
            body=fields.get(b"d", b""),
            version=item.entry_id,
            error=ErrorInfo(Failure.PERMANENT, None, f"malformed record: {item.reason}"),
            deliveries=deliveries.get(item.entry_id.encode(), 1),
            cache_key=cache_key,
            shard_key=fields.get(b"sk", b""),
        )
