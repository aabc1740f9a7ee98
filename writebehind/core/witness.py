"""The failover fence of versioned writes: is the Redis primary still the one the versions
came from?

A writer raises the version floor (``core.floor``) and then writes its
versions to MongoDB. The floor protects only primaries seeded after it was
raised; a primary that took over and was seeded while a writer still held
versions read from the lost one (a slow MongoDB, a worker paused between its
read and its floor update) may issue lower versions for newer writes, which
the held ones would then overwrite in MongoDB. So, after the floor is raised
(or found covering) and before the data is written, each writer checks that
the partition's current primary still holds the stream entry its newest
version came from: its *witness*. If it does, that primary's stream has
issued that id, so all its later ids are higher, and the versions are safe to
write; if it does not, the versions came from a primary that is gone and
``PrimaryChanged`` is raised instead of writing. One ``XRANGE`` of a single
id per partition per batch, on the writer's own Redis connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from writebehind.core.errors import PrimaryChanged


@dataclass(frozen=True, slots=True)
class Witness:
    """A stream entry a batch's versions came from: ``stream``'s entry ``entry_id``, holding
    at least ``fields`` (compared byte for byte; empty: its presence is enough)."""

    stream: str
    entry_id: str
    fields: Mapping[bytes, bytes] = field(default_factory=dict)


def _id_key(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def newest_entry(stream: str, entries: Iterable[tuple[bytes, Mapping[bytes, bytes]]]) -> Witness:
    """The witness of a batch read from ``stream``: its entry with the highest id, with all
    its fields. Raises ``ValueError`` for no entries."""
    entry_id, fields = max(entries, key=lambda e: _id_key(e[0]))
    return Witness(stream, entry_id.decode(), dict(fields))


def _holds(reply: Any, witness: Witness) -> bool:
    if not reply:
        return False
    entry_id, fields = reply[0]
    got = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    if got != witness.entry_id or fields is None:
        return False
    return all(fields.get(name) == value for name, value in witness.fields.items())


async def confirm(redis: Any, witnesses: Sequence[Witness]) -> None:
    """Check that Redis (the partitions' current primaries) holds every witness entry.

    One pipelined ``XRANGE <id> <id>`` per witness (a cluster pipeline routes
    each by its stream's slot).

    Raises:
        PrimaryChanged: an entry is missing or holds other fields; the caller must not
            write the versions it covers.
        redis.exceptions.RedisError: Redis did not answer (the caller retries).
    """
    if not witnesses:
        return
    if len(witnesses) == 1:  # the common case: a bare command costs less than a pipeline
        w = witnesses[0]
        replies = [await redis.xrange(w.stream, min=w.entry_id, max=w.entry_id, count=1)]
    else:
        pipe = redis.pipeline(transaction=False)
        for w in witnesses:
            pipe.xrange(w.stream, min=w.entry_id, max=w.entry_id, count=1)
        replies = await pipe.execute()
    for w, reply in zip(witnesses, replies, strict=True):
        if not _holds(reply, w):
            raise PrimaryChanged(
                f"the Redis primary no longer holds entry {w.entry_id} of {w.stream}, which "
                "these versions came from: it changed (a failover, a restart that lost it) "
                "after they were read, and a new primary may have issued lower versions for "
                "newer writes since; nothing was written to MongoDB"
            )
