"""``wait_persisted``: polling MongoDB until it holds a write, or the write is dead-lettered.

The SDK's only wait on the worker. It polls MongoDB (``find_one`` of the
version field, on a jittered backoff from 2 to 50 ms) and, between polls, the
dead-letter source index in Redis, so a refused write raises at once rather
than at the deadline. A hard delete leaves nothing to find: its entry acked by
the workers' group says it was applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core.backoff import Backoff
from writebehind.core.codec import META_FIELD
from writebehind.core.errors import DeadLettered, PersistTimeout
from writebehind.core.groups import consumer_group
from writebehind.core.version import Version

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind


async def wait_persisted(wb: WriteBehind, version: Version, seconds: float) -> None:
    """Return once MongoDB holds ``version`` (checked by the caller: a write's) or newer.

    Raises ``DeadLettered`` as soon as the write is seen in the dead-letter stream,
    ``PersistTimeout`` after ``seconds``, and ``pymongo.errors.PyMongoError`` when
    MongoDB fails.
    """
    # The deadline bounds the calls too: a frozen MongoDB would otherwise hold one
    # find_one for PyMongo's server selection (30 s), whatever ``seconds`` says.
    with anyio.move_on_after(seconds):
        await _poll(wb, version, seconds)
        return
    raise PersistTimeout(
        f"MongoDB did not hold {version.collection}/{version.doc_id!r} at "
        f"version {version} within {seconds}s (MongoDB or Redis did not answer in time)"
    )


async def _poll(wb: WriteBehind, version: Version, seconds: float) -> None:
    assert version.collection is not None
    coll = wb.mongo_collection(version.collection)
    deadline = anyio.current_time() + seconds
    polls = Backoff(base=0.002, cap=0.05)
    while True:
        stored = await coll.find_one({"_id": version.doc_id}, {META_FIELD: 1})
        if holds(stored, version):
            return
        if stored is None and version.deleted and await _acknowledged(wb, version):
            return  # a hard delete leaves nothing behind; the ack says it was applied
        delay = polls.next_delay()
        try:
            letter = await wb.redis_call(_dead_letter_of(wb, version))
        except (RedisConnectionError, RedisTimeoutError):
            letter = None  # Redis unreachable: MongoDB alone still answers the wait
        if letter is not None:
            raise DeadLettered(version, *letter)
        if anyio.current_time() + delay > deadline:
            raise PersistTimeout(
                f"MongoDB did not hold {version.collection}/{version.doc_id!r} at "
                f"version {version} within {seconds}s"
            )
        await anyio.sleep(delay)


async def _dead_letter_of(wb: WriteBehind, version: Version) -> tuple[str, str] | None:
    """The letter id (``partition/entry-id``) and reason of a dead-lettered write."""
    keys, redis = wb.keys, wb.redis
    assert version.collection is not None
    partition = keys.partition_of(version.collection, version.doc_id)
    letter_id: Any = await redis.hget(keys.dead_letter_sources(partition), str(version))
    if letter_id is None:
        return None
    rows: Any = await redis.xrange(keys.dead_letters(partition), letter_id, letter_id)
    if not rows:  # deleted by hand or purged: the index is only a hint
        return None
    reason = rows[0][1].get(b"error", b"").decode("utf-8", "replace")
    return f"{partition}/{letter_id.decode('ascii')}", reason


async def _acknowledged(wb: WriteBehind, version: Version) -> bool:
    keys = wb.keys
    assert version.collection is not None
    stream = keys.stream(keys.partition_of(version.collection, version.doc_id))
    try:
        return await wb.redis_call(_entry_acknowledged(wb.redis, stream, wb.group, version))
    except ResponseError:  # no stream or group yet: nothing was applied
        return False


async def _entry_acknowledged(redis: Any, stream: str, group: str, version: Version) -> bool:
    """The group has delivered the entry and it is no longer pending: it was applied."""
    info = await consumer_group(redis, stream, group)
    if info is None or Version.parse(info["last-delivered-id"]) < version:
        return False
    pending = await redis.xpending_range(stream, group, str(version), str(version), 1)
    return not pending


def holds(stored: Mapping[str, Any] | None, version: Version) -> bool:
    """A stored document's ``_wb.v`` is ``version`` or newer (``None``: no document)."""
    if stored is None:
        return False
    meta = stored.get(META_FIELD)
    if not isinstance(meta, Mapping) or "v" not in meta:
        return False
    return Version.from_pair(meta["v"]) >= version
