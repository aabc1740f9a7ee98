"""Replaying retained stream records into MongoDB through the version-guarded writes.

Replay only reads the partition streams (``XRANGE``, never the consumer
group) and writes guarded upserts, so it runs safely beside live workers: a
record older than what MongoDB holds changes nothing, and running a replay
twice is the same as running it once. Records MongoDB refuses for good go to
the dead-letter stream, once: not when a letter for the same entry is already
there (from the worker or an earlier replay). They are not acknowledged
(replay is no consumer, and the entry may be pending in a worker, which will
settle it itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from bson.codec_options import CodecOptions
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS
from writebehind.core.deployment import reader_codec, verify_partition_count
from writebehind.core.errors import HistoryGapError as HistoryGapError  # re-exported
from writebehind.core.errors import InvalidInput
from writebehind.core.keys import KeySpace, encode_id
from writebehind.core.replies import as_text, is_no_such_key
from writebehind.core.script_calls import ScriptCall, run_scripts
from writebehind.core.scripts import Scripts, invalidation_args, parse_letter_reply
from writebehind.core.version import Version
from writebehind.core.witness import confirm, newest_entry
from writebehind.sink.bulk import MongoSink
from writebehind.sink.classify import ErrorInfo, Failure
from writebehind.sink.plan import Malformed, decode_entries
from writebehind.sink.reapply import Outcome, OutcomeCounts, Reapplier, Result, predict
from writebehind.tools.replay.bounds import (
    Gap,
    ReplayRange,
    StreamHistory,
    describe,
    estimate_records,
    find_gap,
    iso,
)
from writebehind.worker.stream import LetterToMove, dead_letter_fields

log = structlog.get_logger("writebehind.tools.replay")

CONSUMER = "replay"
"""The ``consumer`` field of the dead letters replay writes."""
MAX_EXAMPLES = 3
_APPLIED = frozenset({Outcome.INSERTED, Outcome.UPDATED, Outcome.DELETED})

ProgressCallback = Callable[[int, int], None]
"""Called with (entries read so far, estimated entries in the range)."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    range: ReplayRange
    collection: str | None = None
    partition: int | None = None
    """Only this partition's stream; ``None``: all of them."""
    dry_run: bool = False
    batch_size: int = 500
    """Entries per ``XRANGE`` call, and so per coalesced ``bulk_write``."""
    allow_gap: bool = False
    """Go on when SINCE is older than a stream's retained history."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInput(f"batch_size must be >= 1, got {self.batch_size!r}")


def history_gap(since: Version, gaps: Sequence[Gap]) -> HistoryGapError:
    """The error for a SINCE older than the retained history of the ``gaps``' partitions."""
    resume_from = max(g.resume_from for g in gaps)
    partitions = ", ".join(str(g.partition) for g in gaps)
    return HistoryGapError(
        f"SINCE {describe(since)} is older than the retained history of partition "
        f"{partitions}: records from that time were trimmed from Redis and cannot be "
        f"replayed. The oldest time to replay from without a gap is "
        f"{iso(resume_from.ms)} (id {resume_from}). Replay from there, or "
        "pass --allow-gap to replay what is retained.",
        since=since,
        gaps=gaps,
        resume_from=resume_from,
    )


@dataclass(slots=True)
class ReplayResult:
    """What a replay did (or, for a dry run, would do)."""

    options: ReplayOptions
    partitions: list[int]
    report: OutcomeCounts = field(default_factory=OutcomeCounts)
    read: int = 0
    """Stream entries read in the range (before the collection filter)."""
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    """``partition/entry-id`` of a few malformed entries."""
    dead_lettered: int = 0
    """Refused records this run wrote a dead letter for."""
    already_dead_lettered: int = 0
    """Refused records whose dead letter was already there; none was added."""
    gaps: list[Gap] = field(default_factory=list)
    """Gaps in the retained history, replayed over with ``allow_gap``."""
    missing_streams: list[int] = field(default_factory=list)
    """Partitions whose stream does not exist in Redis."""
    seconds: float = 0.0

    @property
    def records(self) -> int:
        """Records of the selected collection(s) that were considered."""
        return sum(self.report.total(o) for o in Outcome)

    @property
    def applied(self) -> int:
        return sum(self.report.total(o) for o in _APPLIED)

    @property
    def refused(self) -> int:
        """Records MongoDB refused for good: each has one dead letter, new or not."""
        return self.dead_lettered + self.already_dead_lettered

    def as_dict(self) -> dict[str, Any]:
        since, until = self.options.range.since, self.options.range.until
        out = self.report.as_dict()
        out["totals"].update(
            records=self.records,
            applied=self.applied,
            dead_lettered=self.dead_lettered,
            already_dead_lettered=self.already_dead_lettered,
            malformed=self.malformed,
        )
        return {
            "dry_run": self.options.dry_run,
            "since": str(since),
            "since_time": iso(since.ms),
            "until": None if until is None else str(until),
            "until_time": None if until is None else iso(until.ms),
            "collection": self.options.collection,
            "partitions": self.partitions,
            "records_read": self.read,
            "malformed_examples": self.malformed_examples,
            "gaps": [g.as_dict() for g in self.gaps],
            "missing_streams": self.missing_streams,
            "seconds": round(self.seconds, 3),
            **out,
        }


async def stream_history(redis: Redis, keys: KeySpace, partition: int) -> StreamHistory:
    """One partition stream's ``XINFO STREAM``, as a ``StreamHistory``."""
    try:
        info: Any = await redis.xinfo_stream(keys.stream(partition))
    except ResponseError as exc:
        if is_no_such_key(exc):
            return StreamHistory(partition, exists=False)
        raise

    def version(value: Any) -> Version | None:
        return None if value is None else Version.parse(value)

    def entry_id(entry: Any) -> Version | None:
        return None if not entry else Version.parse(entry[0])

    added = info.get("entries-added")
    return StreamHistory(
        partition,
        exists=True,
        length=int(info["length"]),
        first_id=entry_id(info.get("first-entry")),
        last_id=entry_id(info.get("last-entry")),
        last_generated=version(info.get("last-generated-id")),
        max_deleted=version(info.get("max-deleted-entry-id")),
        entries_added=None if added is None else int(added),
    )


class Replayer:
    """One replay run: read the range chunk by chunk, re-apply, dead-letter what MongoDB refuses."""

    def __init__(
        self,
        redis: Redis,
        sink: MongoSink,
        keys: KeySpace,
        options: ReplayOptions,
        *,
        progress: ProgressCallback | None = None,
        retry_for: float = 300.0,
    ) -> None:
        if options.partition is not None and not 0 <= options.partition < keys.partitions:
            raise InvalidInput(
                f"partition {options.partition} is out of range 0..{keys.partitions - 1}"
            )
        self.redis = redis
        self.sink = sink
        self.keys = keys
        self.options = options
        self.progress = progress
        self.reapplier = Reapplier(sink, dry_run=options.dry_run, retry_for=retry_for)
        self.scripts = Scripts(redis)
        partitions = (
            [options.partition] if options.partition is not None else list(range(keys.partitions))
        )
        self.result = ReplayResult(options, partitions)
        self._estimate = 0
        self.codec: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS
        # Dry run only: what MongoDB would hold for the documents the run has
        # "written" so far, as (version, exists). Nothing is written, so a later
        # chunk would otherwise predict against the unchanged stored state.
        self._simulated: dict[tuple[str, str], tuple[Version | None, bool]] = {}

    async def run(self) -> ReplayResult:
        """Replay the range; raises what ``replay`` raises."""
        started = time.monotonic()
        since, until = self.options.range.since, self.options.range.until
        await verify_partition_count(self.redis, self.keys)
        self.codec = self.sink.codec_options = await reader_codec(self.redis, self.keys)
        histories = [await stream_history(self.redis, self.keys, p) for p in self.result.partitions]
        gaps = [g for h in histories if (g := find_gap(h, since)) is not None]
        if gaps and not self.options.allow_gap:
            raise history_gap(since, gaps)
        self.result.gaps = gaps
        self.result.missing_streams = [h.partition for h in histories if not h.exists]
        self._estimate = sum(estimate_records(h, since, until) for h in histories)
        log.info(
            "replay_started",
            since=describe(since),
            until=None if until is None else describe(until),
            partitions=self.result.partitions,
            collection=self.options.collection,
            dry_run=self.options.dry_run,
            estimated_records=self._estimate,
            gaps=[g.partition for g in gaps],
        )
        self._report_progress()
        for history in histories:
            end = until if until is not None else history.end
            if history.exists and end is not None and since <= end:
                await self._replay_partition(history.partition, since, end)
        self.result.seconds = time.monotonic() - started
        log.info(
            "replay_finished",
            records=self.result.records,
            applied=self.result.applied,
            skipped_newer=self.result.report.total(Outcome.SKIPPED_NEWER),
            dead_lettered=self.result.dead_lettered,
            already_dead_lettered=self.result.already_dead_lettered,
            malformed=self.result.malformed,
            seconds=round(self.result.seconds, 3),
            dry_run=self.options.dry_run,
        )
        return self.result

    def _report_progress(self) -> None:
        if self.progress is not None:
            self.progress(self.result.read, max(self._estimate, self.result.read))

    async def _replay_partition(self, partition: int, since: Version, end: Version) -> None:
        stream = self.keys.stream(partition)
        start, stop = str(since), str(end)
        while True:
            entries: Any = await self.redis.xrange(
                stream, min=start, max=stop, count=self.options.batch_size
            )
            if not entries:
                return
            self.result.read += len(entries)
            await self._replay_chunk(partition, entries)
            self._report_progress()
            if len(entries) < self.options.batch_size:
                return
            last = entries[-1][0]
            start = "(" + as_text(last)

    async def _replay_chunk(
        self, partition: int, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]
    ) -> None:
        pendings, malformed = decode_entries(entries, self.codec)
        wanted = self.options.collection
        if wanted is not None:
            pendings = [p for p in pendings if p.record.collection == wanted]
            malformed = [m for m in malformed if m.fields.get(b"c") == wanted.encode()]
        self._count_malformed(partition, malformed)
        if not pendings:
            return
        # Where a document's newest record is refused, the reapplier writes the
        # next newest, as the worker does.
        # The primary must still hold the chunk when it is written (core.witness).
        witness = newest_entry(self.keys.stream(partition), entries)

        async def fence() -> None:
            await confirm(self.redis, [witness])

        results = await self.reapplier.apply(pendings, fence)
        if self.options.dry_run:
            results = self._simulate(results)
        failed = [r for r in results if r.outcome is Outcome.FAILED]
        if failed:
            await self._dead_letter(partition, failed)
        self.result.report.add(results)

    def _simulate(self, results: list[Result]) -> list[Result]:
        """Dry run: predict against what earlier chunks would have written."""
        out: list[Result] = []
        for r in results:
            if r.outcome is Outcome.COALESCED:
                out.append(r)
                continue
            key = _doc_key(r)
            state = self._simulated.get(key)
            outcome = r.outcome if state is None else predict(r.pending, *state)
            if outcome in _APPLIED:
                deleted = r.pending.record.op == "del"
                version = None if deleted and self.sink.hard_deletes else r.pending.version
                self._simulated[key] = (version, not deleted)
            out.append(Result(r.pending, outcome, r.error))
        return out

    def _count_malformed(self, partition: int, malformed: Sequence[Malformed]) -> None:
        for m in malformed:
            self.result.malformed += 1
            if len(self.result.malformed_examples) < MAX_EXAMPLES:
                self.result.malformed_examples.append(f"{partition}/{m.entry_id}")
            log.warning(
                "malformed_record", partition=partition, entry_id=m.entry_id, reason=m.reason
            )

    async def _dead_letter(self, partition: int, failed: Sequence[Result]) -> None:
        """Add one letter per refused record unless its entry has one already; no XACK.

        Replay holds no pending entries, and re-driving a range must not pile up
        letters for records the worker or an earlier replay dead-lettered.
        """
        calls: list[ScriptCall] = []
        errors: list[ErrorInfo] = []
        for r in failed:
            p = r.pending
            error = r.error or ErrorInfo(Failure.PERMANENT, None, "refused by MongoDB")
            errors.append(error)
            letter = LetterToMove(
                entry_id=p.entry_id,
                collection=p.record.collection,
                op=p.record.op,
                body=p.record.body,
                version=str(p.version),
                error=error,
                deliveries=1,
                cache_key=None,
                shard_key=p.record.shard_key,
            )
            calls.append(
                ScriptCall(
                    self.scripts.dead_letter_once,
                    [
                        self.keys.dead_letters(partition),
                        self.keys.dead_letter_sources(partition),
                        self.keys.cache(partition, p.record.collection, p.doc_id),
                        self.keys.invalidations(partition),
                    ],
                    [
                        p.entry_id,
                        str(p.version),
                        *invalidation_args((p.record.collection, encode_id(p.doc_id))),
                        *dead_letter_fields(letter, partition, CONSUMER),
                    ],
                )
            )
        replies, _ = await run_scripts(self.redis, calls)
        for r, error, reply in zip(failed, errors, replies, strict=True):
            outcome = parse_letter_reply(reply)
            if outcome.added:
                self.result.dead_lettered += 1
            else:
                self.result.already_dead_lettered += 1
            emit = log.error if outcome.added else log.warning
            emit(
                "record_dead_lettered" if outcome.added else "record_already_dead_lettered",
                consumer=CONSUMER,
                partition=partition,
                collection=r.pending.record.collection,
                entry_id=r.pending.entry_id,
                letter=f"{partition}/{outcome.letter_id}",
                code=error.code,
                error=error.message[:300],
            )


def _doc_key(result: Result) -> tuple[str, str]:
    return result.pending.record.collection, encode_id(result.pending.doc_id)


async def replay(
    redis: Redis,
    sink: MongoSink,
    keys: KeySpace,
    options: ReplayOptions,
    *,
    progress: ProgressCallback | None = None,
    retry_for: float = 300.0,
    on_retry: Callable[[str, int, float], None] | None = None,
) -> ReplayResult:
    """Replay the retained records in ``options.range`` into MongoDB.

    Raises:
        HistoryGapError: SINCE is older than a stream's retained history and
            ``options.allow_gap`` is off; nothing was replayed.
        PartitionCountMismatch: ``keys`` has another partition count than Redis records.
        InvalidInput: ``options.partition`` is out of range.
        RetriesExhausted: MongoDB kept failing transiently for ``retry_for`` seconds
            (a ``TimeoutError``; ``on_retry`` is told of each retry: error, records
            waiting, seconds failing).
        PrimaryChanged: the Redis primary was replaced while a chunk was being written,
            by one without it (``core.witness``): that chunk was not written; what was
            applied before stays applied, and running again replays from the new primary.
        redis.exceptions.RedisError, pymongo.errors.PyMongoError: the servers failed
            otherwise; what was applied stays applied, and running again is safe.
    """
    replayer = Replayer(redis, sink, keys, options, progress=progress, retry_for=retry_for)
    replayer.reapplier.on_retry = on_retry
    return await replayer.run()
