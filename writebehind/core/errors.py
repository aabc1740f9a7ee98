"""The exceptions writebehind raises: one hierarchy under WriteBehindError, all defined here.

Input errors are raised before anything is written, so catching one means
nothing changed. Driver errors are not wrapped: a Redis failure reaches the
caller as ``redis.exceptions.RedisError`` (``ConnectionError``,
``TimeoutError``, ``ResponseError``), a MongoDB one as
``pymongo.errors.PyMongoError``; each public method's docstring says which it
may raise. Errors that are also ``ValueError``, ``TypeError``, ``LookupError``
or ``TimeoutError`` subclass those too, so code written against the built-in
kinds keeps working.

    WriteBehindError
    +-- InvalidInput (ValueError): the arguments can never be stored
    |   +-- UnsupportedIdType (TypeError), IdMismatch, InvalidCollectionName,
    |   +-- InvalidVersion, BoundError, InvalidLetterId
    |   +-- InvalidCachePolicy, InvalidEntityTag (writebehind.http)
    |   +-- InvalidDocument: InvalidFieldName, IntegerOutOfRange, NotEncodable,
    |       DocumentTooLarge
    +-- ConfigurationError: PartitionCountMismatch, UnsafeEvictionPolicy,
    |   InvalidAddress (ValueError)
    +-- BacklogFull, TooManyConflicts, RedisOutOfMemory, NotReplicated, WriteManyError
    +-- PersistTimeout (TimeoutError), RetriesExhausted (TimeoutError)
    +-- MalformedRecord (ValueError): a stream entry that is no writebehind record
    +-- HistoryGapError: a replay range older than the retained history
    +-- UnknownLetters (LookupError): dead-letter IDs that do not exist
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "BacklogFull",
    "BoundError",
    "CacheUnavailable",
    "ClientClosed",
    "CodecMismatch",
    "ConfigurationError",
    "ConnectionPoolExhausted",
    "DatabaseUnavailable",
    "DeadLettered",
    "DocumentTooLarge",
    "HistoryGapError",
    "IdMismatch",
    "IntegerOutOfRange",
    "InvalidAddress",
    "InvalidCachePolicy",
    "InvalidCollectionName",
    "InvalidDocument",
    "InvalidEntityTag",
    "InvalidFieldName",
    "InvalidInput",
    "InvalidLetterId",
    "InvalidVersion",
    "MalformedRecord",
    "MissingShardKey",
    "NotDecodable",
    "NotEncodable",
    "NotReplicated",
    "PartitionCountMismatch",
    "PersistTimeout",
    "PrimaryChanged",
    "RedisOutOfMemory",
    "ResizeRefused",
    "RetriesExhausted",
    "ShardKeyChanged",
    "TooManyConflicts",
    "UnknownLetters",
    "UnsafeEvictionPolicy",
    "UnsupportedIdType",
    "WriteBehindError",
    "WriteManyError",
]


class WriteBehindError(Exception):
    """Base class of every error raised by writebehind."""


class InvalidInput(WriteBehindError, ValueError):
    """The call's arguments can never be stored; nothing was written."""


class UnsupportedIdType(InvalidInput, TypeError):
    """Document ids must be ``str``, ``int`` (int64), ``bson.ObjectId`` or ``uuid.UUID``."""


class IdMismatch(InvalidInput):
    """The document's ``_id`` differs from the id argument."""


class InvalidCollectionName(InvalidInput):
    """The collection name is not one MongoDB accepts."""


class InvalidDocument(InvalidInput):
    """The document is not storable; ``path`` names the offending field when known."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message if path is None else f"{message} (at {path!r})")
        self.path = path


class MissingShardKey(InvalidDocument):
    """A write to a sharded collection lacks a shard key field's value (``path`` names it).

    Every guarded upsert must name the full shard key to target one shard
    (MongoDB manual, "Upsert on a Sharded Collection"); nothing was written.
    """


class ShardKeyChanged(InvalidInput):
    """A ``patch``/``modify`` would change or drop a shard key field of a stored document.

    A document's shard key values are fixed for the life of its ``_id`` in
    writebehind (docs/scaling.md, "Sharded collections"); nothing was written.
    """


class InvalidFieldName(InvalidDocument):
    """A field name starts with ``$``, contains ``.`` or NUL, is not a string, or is reserved."""


class IntegerOutOfRange(InvalidDocument):
    """An integer does not fit in a signed 64-bit BSON integer."""


class NotEncodable(InvalidDocument):
    """A value has no BSON encoding."""


class DocumentTooLarge(InvalidDocument):
    """The encoded document is over MongoDB's 16 MiB limit."""


class ConfigurationError(WriteBehindError):
    """The client or worker is configured in a way that cannot work."""


class PartitionCountMismatch(ConfigurationError):
    """Redis already records a different partition count for this prefix."""

    def __init__(self, configured: int, stored: int) -> None:
        super().__init__(
            f"configured with {configured} partitions but Redis records {stored} for this "
            f"prefix; documents would map to other streams. Use partitions={stored} or a "
            "new prefix."
        )
        self.configured = configured
        self.stored = stored


class BacklogFull(WriteBehindError):
    """A partition's unpersisted backlog is over ``max_backlog``; nothing was written."""

    def __init__(self, partition: int, backlog: int, limit: int) -> None:
        super().__init__(
            f"partition {partition} has {backlog} unpersisted records (limit {limit}); "
            "the workers are behind or MongoDB is down. Retry later."
        )
        self.partition = partition
        self.backlog = backlog
        self.limit = limit


class TooManyConflicts(WriteBehindError):
    """A read-modify-write lost the race too many times in a row; nothing was written."""


class PersistTimeout(WriteBehindError, TimeoutError):
    """``wait_persisted`` gave up before MongoDB held the version."""


class RedisOutOfMemory(WriteBehindError):
    """Redis refused the write at its ``maxmemory`` limit; nothing was written."""


class NotReplicated(WriteBehindError):
    """The writes were made, but fewer replicas than ``wait_replicas`` confirmed them in time.

    ``versions`` are the writes made: they are in the primary's streams and will
    reach MongoDB, unless the primary fails before a replica has them. Writing
    again makes a new, newer version.

    For a cached computation's invalidation (``invalidate``, ``invalidate_tags``,
    ``bump_namespace``) or ``refresh``, ``made`` says what was made on the
    primary and ``versions`` is empty: it is in effect there, but a failover
    before a replica has it would lose it. Making it again is harmless.
    """

    def __init__(
        self, versions: Sequence[Any], acknowledged: int, wanted: int, *, made: str | None = None
    ) -> None:
        self.versions = list(versions)
        self.acknowledged = acknowledged
        self.wanted = wanted
        self.made = made
        if made is None:
            text = f"{plural(len(self.versions), 'write')} made, but {acknowledged} of the "
            text += f"{wanted} replicas asked for confirmed them in time"
        else:
            text = f"{made}: made on the primary, but {acknowledged} of the {wanted} replicas "
            text += "asked for confirmed it in time; a failover now could lose it"
        super().__init__(text)


class PrimaryChanged(WriteBehindError):
    """Redis changed primary between reading versions and writing them to MongoDB, and the
    new primary does not hold the records they came from: nothing was written.

    Written anyway, they could overwrite newer writes made on the new primary,
    which may issue lower versions (``core.floor``). Records the new primary
    still holds are written by the workers from there (a worker leaves its
    batch pending for that); the others were lost with the old primary, which
    happens only to writes no replica had confirmed (``wait_replicas``).
    """


class InvalidVersion(InvalidInput):
    """Not a stream entry id (``<ms>-<seq>``, each an int in [0, 2**63))."""


class UnsafeEvictionPolicy(ConfigurationError):
    """Redis may evict keys without a TTL, i.e. unsaved writes and their records."""


class InvalidAddress(ConfigurationError, ValueError):
    """Not a ``host:port`` address to listen on (the worker's ``metrics_address``)."""


class RetriesExhausted(WriteBehindError, TimeoutError):
    """A transient failure lasted longer than the caller's retry budget; see the message."""


class MalformedRecord(WriteBehindError, ValueError):
    """A stream entry that is not a writebehind record."""


class BoundError(InvalidInput):
    """A replay's SINCE or UNTIL that cannot be read, or a range empty by construction."""


class HistoryGapError(WriteBehindError):
    """A replay's SINCE is older than what the streams retain: some records in the range are gone.

    ``since`` and ``resume_from`` are ``Version``s (``resume_from``: the oldest
    point to replay from without a gap); ``gaps`` the ``Gap`` of each partition.
    Nothing was replayed.
    """

    def __init__(self, message: str, *, since: Any, gaps: Sequence[Any], resume_from: Any) -> None:
        super().__init__(message)
        self.since = since
        self.gaps = list(gaps)
        self.resume_from = resume_from


class InvalidLetterId(InvalidInput):
    """Text that is not a dead-letter ID (``<partition>/<entry id>``) of this deployment."""


class UnknownLetters(WriteBehindError, LookupError):
    """Some of the given dead-letter IDs are not in their dead-letter stream; nothing was done.

    ``ids`` are the missing ``LetterId``s.
    """

    def __init__(self, ids: Sequence[Any]) -> None:
        super().__init__("no such dead letter: " + ", ".join(str(i) for i in ids))
        self.ids = list(ids)


class BacklogRefused(WriteBehindError):
    """Internal: the write script refused a write for backlog; carries the count.

    The SDK turns it into ``BacklogFull`` (or waits); callers never see it.
    """

    def __init__(self, backlog: int) -> None:
        super().__init__(backlog)
        self.backlog = backlog


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class WriteManyError(WriteBehindError):
    """Some writes of a ``set_many`` were refused.

    ``results`` has one item per input, in order: the ``Version`` of a write that
    was made, or the exception that refused it.
    """

    def __init__(self, results: Sequence[Any]) -> None:
        self.results = list(results)
        failed = [r for r in self.results if isinstance(r, BaseException)]
        super().__init__(
            f"{len(failed)} of {len(self.results)} writes were refused; "
            f"first: {failed[0] if failed else None}"
        )


class DatabaseUnavailable(WriteBehindError, TimeoutError):
    """MongoDB did not answer a read the SDK had to make within ``ReadPolicy.mongo_timeout``.

    A miss, a fill, a read while Redis is down, or the read of ``modify``:
    nothing was written. A frozen or unreachable MongoDB otherwise holds the
    call for PyMongo's server selection (30 s), or for ever on a connection
    that stopped answering (PyMongo sets no socket timeout by default).
    """


class CacheUnavailable(WriteBehindError):
    """Redis did not answer a write in time, or is known to be down (the circuit is open).

    Write-behind cannot write without Redis: the change record in the stream is
    the only copy of the write until MongoDB has it. ``written`` is ``False``
    when nothing was sent (the write was certainly not made), ``None`` when the
    request was sent but no reply came in time: the script is atomic, so the
    write was then made completely or not at all, never half.
    """

    def __init__(self, message: str, written: bool | None = False) -> None:
        super().__init__(message)
        self.written = written


class ClientClosed(WriteBehindError):
    """The ``WriteBehind`` was closed (``aclose()``, or ``async with`` ended); nothing was sent."""


class ConnectionPoolExhausted(WriteBehindError):
    """No Redis connection became free within the pool's wait; nothing was sent.

    Raise the pool size (``max_connections`` in the Redis URL) or its wait
    (``timeout`` in the URL, seconds), or send fewer calls at once.
    """


class CodecMismatch(ConfigurationError):
    """The codec options differ from the ones this deployment records in Redis.

    Records written under one UUID representation or datetime handling and read
    under another are misread (a legacy UUID ``_id`` becomes ``Binary``), so a
    component configured differently is refused before it reads or writes.
    """

    def __init__(self, configured: str, stored: str) -> None:
        super().__init__(
            f"codec options {configured} differ from the deployment's {stored} recorded in "
            "Redis; every producer, worker and tool must share them. Give the producer's "
            "database the recorded options, or use a new prefix."
        )
        self.configured = configured
        self.stored = stored


class NotDecodable(InvalidDocument):
    """A value BSON can encode but the deployment's codec options cannot read back.

    An example: ``bson.DatetimeMS`` beyond year 9999 under the default
    ``datetime_conversion``. The worker could never decode such a record.
    """


class DeadLettered(WriteBehindError):
    """The write was dead-lettered: it will not reach MongoDB unless re-driven.

    ``letter_id`` is the letter's id (``partition/entry-id``, as ``writebehind dlq``
    shows it) and ``reason`` the error recorded with it.
    """

    def __init__(self, version: Any, letter_id: str, reason: str) -> None:
        super().__init__(f"version {version} was dead-lettered as {letter_id}: {reason}")
        self.version = version
        self.letter_id = letter_id
        self.reason = reason


class ResizeRefused(WriteBehindError):
    """``partitions set`` found the deployment not ready to change its partition count.

    ``problems`` lists each reason (records not yet in MongoDB, a worker still
    running, a producer still writing); nothing was changed.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the partition count was not changed: " + "; ".join(problems))


class InvalidCachePolicy(InvalidInput):
    """An HTTP ``CachePolicy`` that cannot be sent: a negative or non-integer age, ``no-store``
    with an age, ``s-maxage`` with ``private``, or a bad ``Vary`` field name (RFC 9111 5.2)."""


class InvalidEntityTag(InvalidInput):
    """Not an entity tag's opaque part (RFC 9110 8.8.3: ``etagc`` characters, no ``"``)."""
