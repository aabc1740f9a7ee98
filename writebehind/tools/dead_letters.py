"""The dead-letter streams: list, look up, re-drive and purge dead letters.

Re-driving applies each letter's record at its *original* version through the
same coalescing, version-guarded writes as the worker (``reapply.Reapplier``),
so a dead letter older than what MongoDB now holds is skipped, never applied
over it, and re-driving twice changes nothing.

What happens to a letter:

- applied, or skipped because MongoDB holds its version or newer, or covered
  by a newer letter of the same document that landed: removed (``XDEL``);
- refused again by MongoDB: kept, updated in place with the new error and one
  more delivery. Stream entries cannot be edited, so it is re-added with the
  new fields and the old entry deleted, in one script; it gets a new ID;
- not decodable (a malformed record): kept as it is;
- ``dry_run``: nothing is written or removed; outcomes are predictions.

A letter refused again settles its cache entry as the first move did: an entry
still at the refused version is dropped, and near caches are told.
"""

from __future__ import annotations

import os
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from writebehind.core.deployment import reader_codec
from writebehind.core.errors import UnknownLetters as UnknownLetters  # re-exported
from writebehind.core.keys import KeySpace, encode_id
from writebehind.core.replies import as_text
from writebehind.core.script_calls import ScriptCall, run_scripts
from writebehind.core.scripts import INVALIDATE_LUA, invalidation_args
from writebehind.core.version import Version
from writebehind.core.witness import Witness, confirm
from writebehind.sink.bulk import MongoSink
from writebehind.sink.classify import ErrorInfo, Failure
from writebehind.sink.guards import Pending
from writebehind.sink.reapply import Outcome, OutcomeCounts, Reapplier
from writebehind.tools.letters import (
    DeadLetter,
    LetterId,
    decode_letter,
    refailed_fields,
    to_json_value,
)

PAGE = 500
INVALID = "invalid"
"""Outcome of a letter that cannot be re-driven (its record is not decodable)."""

# Replace a dead letter by a copy with updated fields, unless it is gone (purged
# or re-driven by someone else meanwhile: then nothing is resurrected). The
# source index (see redis_scripts) follows the letter to its new id. A cache
# entry still at the refused version is dropped, so reads show what MongoDB holds,
# and near caches are told (core/scripts.py, INVALIDATE_LUA).
#
# KEYS: dead-letter stream, its source index, the record's cache entry, invalidation stream
# ARGV: old entry id, the letter's source entry id, cache version to drop ("" none),
# collection ('' no invalidation record), encoded id, invalidation stream max length,
# then field/value pairs
# Returns the letter's new id, or nil if it was gone
REPLACE_LETTER = (
    INVALIDATE_LUA
    + """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[3], 'v') == ARGV[3] then
  redis.call('DEL', KEYS[3])
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 7))
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], id)
invalidate(KEYS[4], ARGV[4], ARGV[5], ARGV[6], id)
return id
"""
)

# Delete letters, and their source index entries where they still name them.
#
# KEYS: dead-letter stream, its source index
# ARGV: letter id, source entry id, letter id, source entry id, ...
DELETE_LETTERS = """
local removed = 0
for i = 1, #ARGV, 2 do
  removed = removed + redis.call('XDEL', KEYS[1], ARGV[i])
  if redis.call('HGET', KEYS[2], ARGV[i + 1]) == ARGV[i] then
    redis.call('HDEL', KEYS[2], ARGV[i + 1])
  end
end
return removed
"""


async def iter_letters(
    redis: Redis,
    keys: KeySpace,
    *,
    collection: str | None = None,
    upto: dict[int, str] | None = None,
    page: int = PAGE,
) -> AsyncIterator[DeadLetter]:
    """Every dead letter, partition by partition, oldest first, read in pages.

    ``upto`` stops each partition at an entry id (see ``dead_letter_ends``), so
    letters added while iterating (by workers, or re-added by a re-drive) are
    not visited. Raises ``redis.exceptions.RedisError`` when Redis fails.
    """
    codec = await reader_codec(redis, keys)
    for partition in range(keys.partitions):
        stream = keys.dead_letters(partition)
        end = "+"
        if upto is not None:
            if partition not in upto:
                continue
            end = upto[partition]
        start = "-"
        while True:
            rows: Any = await redis.xrange(stream, start, end, count=page)
            for entry_id, fields in rows:
                letter = decode_letter(partition, entry_id, fields, codec)
                if collection is None or letter.collection == collection:
                    yield letter
            if len(rows) < page:
                break
            start = "(" + as_text(rows[-1][0])


async def list_letters(
    redis: Redis, keys: KeySpace, *, collection: str | None = None
) -> list[DeadLetter]:
    """All dead letters (of one collection), oldest failure first across partitions.

    Raises ``redis.exceptions.RedisError`` when Redis fails.
    """
    letters = [letter async for letter in iter_letters(redis, keys, collection=collection)]
    return sorted(letters, key=lambda letter: letter.id.sort_key)


async def dead_letter_ends(redis: Redis, keys: KeySpace) -> dict[int, str]:
    """The newest entry id of each non-empty dead-letter stream; ``RedisError`` if Redis fails."""
    pipe = redis.pipeline(transaction=False)
    for partition in range(keys.partitions):
        pipe.xrevrange(keys.dead_letters(partition), "+", "-", count=1)
    replies: list[Any] = await pipe.execute()
    return {p: as_text(rows[0][0]) for p, rows in enumerate(replies) if rows}


async def get_letters(redis: Redis, keys: KeySpace, ids: Iterable[LetterId]) -> list[DeadLetter]:
    """The letters with these IDs, in the order given (duplicates once); all must exist.

    Raises:
        UnknownLetters: some do not exist (``.ids``).
        redis.exceptions.RedisError: Redis failed.
    """
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    pipe = redis.pipeline(transaction=False)
    for letter_id in wanted:
        pipe.xrange(keys.dead_letters(letter_id.partition), letter_id.entry_id, letter_id.entry_id)
    replies: list[Any] = await pipe.execute()
    missing = [i for i, rows in zip(wanted, replies, strict=True) if not rows]
    if missing:
        raise UnknownLetters(missing)
    codec = await reader_codec(redis, keys)
    return [
        decode_letter(i.partition, rows[0][0], rows[0][1], codec)
        for i, rows in zip(wanted, replies, strict=True)
    ]


async def _delete(redis: Redis, keys: KeySpace, letters: Iterable[DeadLetter]) -> int:
    by_partition: dict[int, list[str]] = defaultdict(list)
    for letter in letters:
        by_partition[letter.id.partition] += [letter.id.entry_id, letter.source_id]
    if not by_partition:
        return 0
    script = redis.register_script(DELETE_LETTERS)
    calls = [
        ScriptCall(
            script,
            [keys.dead_letters(partition), keys.dead_letter_sources(partition)],
            args[start : start + 1000],
        )
        for partition, args in by_partition.items()
        for start in range(0, len(args), 1000)
    ]
    replies, _ = await run_scripts(redis, calls)
    return sum(int(n) for n in replies)


async def purge(redis: Redis, keys: KeySpace, ids: Iterable[LetterId]) -> int:
    """Delete these letters; returns how many were deleted.

    Raises:
        UnknownLetters: some do not exist; none was deleted.
        redis.exceptions.RedisError: Redis failed.
    """
    letters = await get_letters(redis, keys, ids)
    return await _delete(redis, keys, letters)


async def purge_all(redis: Redis, keys: KeySpace, *, collection: str | None = None) -> int:
    """Delete every letter (of one collection) that exists now; later arrivals stay.

    Returns how many were deleted; raises ``redis.exceptions.RedisError`` when Redis fails.
    """
    ends = await dead_letter_ends(redis, keys)
    removed = 0
    batch: list[DeadLetter] = []
    async for letter in iter_letters(redis, keys, collection=collection, upto=ends):
        batch.append(letter)
        if len(batch) >= PAGE:
            removed += await _delete(redis, keys, batch)
            batch = []
    return removed + await _delete(redis, keys, batch)


# -- re-driving -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LetterResult:
    """What a re-drive did with one letter."""

    letter: DeadLetter
    outcome: str
    """An ``Outcome`` value (``inserted``, ``skipped_newer``, ``failed``, ...) or ``invalid``."""
    removed: bool
    error: ErrorInfo | None = None
    """Why it failed again, or (``invalid``) why it cannot be re-driven."""
    new_id: LetterId | None = None
    """Where a letter that failed again now lives."""

    def as_dict(self) -> dict[str, Any]:
        letter = self.letter
        return {
            "id": str(letter.id),
            "collection": letter.collection,
            "document_id": to_json_value(letter.doc_id),
            "version": None if letter.version is None else str(letter.version),
            "outcome": self.outcome,
            "removed": self.removed,
            "error_code": None if self.error is None else self.error.code,
            "error": None if self.error is None else self.error.message,
            "new_id": None if self.new_id is None else str(self.new_id),
        }


@dataclass(slots=True)
class RedriveReport:
    dry_run: bool
    results: list[LetterResult] = field(default_factory=list)
    counts: OutcomeCounts = field(default_factory=OutcomeCounts)
    """Per collection and outcome, as replay reports them (invalid letters not included)."""

    def outcome_count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def unresolved(self) -> list[LetterResult]:
        """Letters still in the dead-letter stream because they failed or are invalid."""
        return [r for r in self.results if r.outcome in (Outcome.FAILED.value, INVALID)]

    def totals(self) -> dict[str, int]:
        """Letters per outcome, and how many were removed, over every letter handled."""
        totals = {o.value: self.outcome_count(o.value) for o in Outcome}
        totals[INVALID] = self.outcome_count(INVALID)
        totals["removed"] = sum(1 for r in self.results if r.removed)
        totals["letters"] = len(self.results)
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "totals": self.totals(),
            "collections": self.counts.as_dict()["collections"],
            "letters": [r.as_dict() for r in self.results],
        }


def redrive_consumer_name() -> str:
    """The ``consumer`` field of a letter that failed again on re-drive."""
    return f"dlq-replay@{socket.gethostname()}-{os.getpid()}"


class Redriver:
    """Re-drives dead letters in batches; ``report`` accumulates over calls."""

    def __init__(
        self,
        redis: Redis,
        database: Any,
        keys: KeySpace,
        *,
        dry_run: bool = False,
        retry_for: float = 300.0,
        sink: MongoSink | None = None,
        consumer: str | None = None,
        on_retry: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.dry_run = dry_run
        self.reapplier = Reapplier(
            sink or MongoSink(database, prefix=keys.prefix), dry_run=dry_run, retry_for=retry_for
        )
        self.reapplier.on_retry = on_retry
        self.consumer = consumer or redrive_consumer_name()
        self.report = RedriveReport(dry_run)
        self._replace = redis.register_script(REPLACE_LETTER)

    def _cache_key(self, letter: DeadLetter) -> str:
        """The letter's cache entry (settled if still at its version), or an unused key."""
        partition = letter.id.partition
        if letter.problem is None:
            return self.keys.cache(partition, letter.collection, letter.doc_id)
        return f"{self.keys.dead_letters(partition)}:none"

    @staticmethod
    def _names(letter: DeadLetter) -> tuple[str, str] | None:
        """The letter's collection and encoded id, for near caches (``None``: not decodable)."""
        if letter.problem is not None:
            return None
        return letter.collection, encode_id(letter.doc_id)

    async def redrive(self, letters: Sequence[DeadLetter]) -> list[LetterResult]:
        """Apply ``letters`` and settle each one in its dead-letter stream.

        Documents are stored under the deployment's codec options.

        Returns one result per letter, in the order given.

        Raises:
            RetriesExhausted: MongoDB kept failing transiently for ``retry_for`` seconds.
            PrimaryChanged: the Redis primary was replaced after the letters were read, by
                one without them (``core.witness``): letters not yet written stay as they
                were (on the new primary, if it has them); re-driving again is safe.
            redis.exceptions.RedisError, pymongo.errors.PyMongoError: a server failed;
                letters not yet settled stay as they were, and re-driving again is safe.
        """
        self.reapplier.sink.codec_options = await reader_codec(self.redis, self.keys)
        results: list[LetterResult] = []
        owners: dict[int, DeadLetter] = {}
        pendings: list[Pending] = []
        for letter in letters:
            if letter.problem is not None:
                error = ErrorInfo(Failure.PERMANENT, None, letter.problem)
                results.append(LetterResult(letter, INVALID, False, error))
                continue
            pending = letter.pending()
            owners[id(pending)] = letter
            pendings.append(pending)
        # The primary must still hold the letters when they are written (core.witness):
        # per partition, its newest letter of the batch.
        newest: dict[int, DeadLetter] = {}
        for letter in owners.values():
            held = newest.get(letter.id.partition)
            if held is None or Version.parse(letter.id.entry_id) > Version.parse(held.id.entry_id):
                newest[letter.id.partition] = letter
        witnesses = [
            Witness(self.keys.dead_letters(p), letter.id.entry_id, dict(letter.fields))
            for p, letter in sorted(newest.items())
        ]

        async def fence() -> None:
            await confirm(self.redis, witnesses)

        # Where a document's newest letter is refused again, the reapplier writes
        # its next newest, as the worker does.
        settled = await self.reapplier.apply(pendings, fence)
        self.report.counts.add(settled)
        if self.dry_run:
            results += [
                LetterResult(owners[id(r.pending)], r.outcome.value, False) for r in settled
            ]
        else:
            done = [r for r in settled if r.outcome is not Outcome.FAILED]
            failed = [
                (owners[id(r.pending)], r.error or ErrorInfo(Failure.PERMANENT, None, "refused"))
                for r in settled
                if r.outcome is Outcome.FAILED
            ]
            await _delete(self.redis, self.keys, (owners[id(r.pending)] for r in done))
            new_ids = await self._replace_failed(failed)
            results += [LetterResult(owners[id(r.pending)], r.outcome.value, True) for r in done]
            results += [
                LetterResult(letter, Outcome.FAILED.value, False, error, new_id)
                for (letter, error), new_id in zip(failed, new_ids, strict=True)
            ]
        order = {letter.id: i for i, letter in enumerate(letters)}
        results.sort(key=lambda r: order[r.letter.id])
        self.report.results.extend(results)
        return results

    async def _replace_failed(
        self, failed: Sequence[tuple[DeadLetter, ErrorInfo]]
    ) -> list[LetterId | None]:
        if not failed:
            return []
        now_ms = int(time.time() * 1000)
        calls = [
            ScriptCall(
                self._replace,
                [
                    self.keys.dead_letters(letter.id.partition),
                    self.keys.dead_letter_sources(letter.id.partition),
                    self._cache_key(letter),
                    self.keys.invalidations(letter.id.partition),
                ],
                [
                    letter.id.entry_id,
                    letter.source_id,
                    "" if letter.problem or letter.version is None else str(letter.version),
                    *invalidation_args(self._names(letter)),
                    *refailed_fields(letter, error, now_ms=now_ms, consumer=self.consumer),
                ],
            )
            for letter, error in failed
        ]
        replies, _ = await run_scripts(self.redis, calls)
        return [
            None if reply is None else LetterId(letter.id.partition, as_text(reply))
            for (letter, _), reply in zip(failed, replies, strict=True)
        ]


async def redrive_ids(
    redis: Redis, database: Any, keys: KeySpace, ids: Iterable[LetterId], **options: Any
) -> RedriveReport:
    """Re-drive these letters; ``options`` are ``Redriver``'s (``dry_run``, ``retry_for``, ...).

    ``options`` are ``Redriver``'s (``dry_run``, ``retry_for``, ``sink``, ``consumer``,
    ``on_retry``).
    Raises:
        UnknownLetters: some do not exist; nothing was re-driven.
        RetriesExhausted, PrimaryChanged, redis.exceptions.RedisError,
            pymongo.errors.PyMongoError: as ``Redriver.redrive``.
    """
    letters = await get_letters(redis, keys, ids)
    redriver = Redriver(redis, database, keys, **options)
    for start in range(0, len(letters), PAGE):
        await redriver.redrive(letters[start : start + PAGE])
    return redriver.report


async def redrive_all(
    redis: Redis, database: Any, keys: KeySpace, *, collection: str | None = None, **options: Any
) -> RedriveReport:
    """Re-drive every letter (of one collection) there is now, a page at a time.

    Letters that arrive meanwhile, and letters re-added because they failed
    again, are not visited: each partition stops at its newest letter of the start.

    Raises: as ``Redriver.redrive``.
    """
    redriver = Redriver(redis, database, keys, **options)
    ends = await dead_letter_ends(redis, keys)
    batch: list[DeadLetter] = []
    async for letter in iter_letters(redis, keys, collection=collection, upto=ends):
        batch.append(letter)
        if len(batch) >= PAGE:
            await redriver.redrive(batch)
            batch = []
    if batch:
        await redriver.redrive(batch)
    return redriver.report
