"""The exceptions writebehind raises: one flat hierarchy under WriteBehindError.

Input errors are raised before anything is written, so catching one means
nothing changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "BacklogFull",
    "ClientClosed",
    "CodecMismatch",
    "ConfigurationError",
    "ConnectionPoolExhausted",
    "DeadLettered",
    "DocumentTooLarge",
    "IdMismatch",
    "IntegerOutOfRange",
    "InvalidCollectionName",
    "InvalidDocument",
    "InvalidFieldName",
    "InvalidInput",
    "NotDecodable",
    "NotEncodable",
    "NotReplicated",
    "PartitionCountMismatch",
    "PersistTimeout",
    "RedisOutOfMemory",
    "TooManyConflicts",
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
    """

    def __init__(self, versions: Sequence[Any], acknowledged: int, wanted: int) -> None:
        self.versions = list(versions)
        self.acknowledged = acknowledged
        self.wanted = wanted
        super().__init__(
            f"{plural(len(self.versions), 'write')} made, but {acknowledged} of the "
            f"{wanted} replicas asked for confirmed them in time"
        )


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
