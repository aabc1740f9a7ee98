"""The deployment's metadata in Redis: what producers, workers and tools must agree on.

The meta hash (``{prefix}:meta``) records the partition count and the codec
options records are encoded with (``codec``, see ``core.codec.codec_text``).
Each is written once, by the first producer or worker to check it, and never
changed; operator tools only read them (``verify_partition_count``), so a tool
pointed at the wrong prefix never claims it.
"""

from __future__ import annotations

from typing import Any

from bson.codec_options import CodecOptions
from redis.asyncio import Redis

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS, codec_text, parse_codec_text
from writebehind.core.errors import CodecMismatch, PartitionCountMismatch
from writebehind.core.keys import KeySpace
from writebehind.core.replies import as_text

_FIELD = "partitions"
CODEC_FIELD = "codec"


async def recorded_partition_count(redis: Redis, keys: KeySpace) -> int | None:
    """The partition count Redis records for ``keys.prefix``; None before first use."""
    stored = await redis.hget(keys.meta, _FIELD)
    return None if stored is None else int(stored)


async def record_partition_count(redis: Redis, keys: KeySpace) -> None:
    """Record the partition count on first use; refuse a count that differs from it.

    Raises:
        PartitionCountMismatch: Redis records another count for this prefix.
        redis.exceptions.RedisError: Redis failed.
    """
    stored = int(await redis.hget(keys.meta, _FIELD) or 0)
    if not stored:
        # Written only when missing: a worker must start on a Redis at maxmemory.
        await redis.hsetnx(keys.meta, _FIELD, keys.partitions)
        stored = int(await redis.hget(keys.meta, _FIELD) or 0)
    if stored != keys.partitions:
        raise PartitionCountMismatch(keys.partitions, stored)


async def verify_partition_count(redis: Redis, keys: KeySpace) -> None:
    """Refuse a partition count other than the recorded one; read-only (none recorded: fine).

    Raises:
        PartitionCountMismatch: Redis records another count for this prefix.
        redis.exceptions.RedisError: Redis failed.
    """
    stored = await recorded_partition_count(redis, keys)
    if stored is not None and stored != keys.partitions:
        raise PartitionCountMismatch(keys.partitions, stored)


async def check_codec(redis: Redis, keys: KeySpace, options: CodecOptions[Any]) -> None:
    """A producer's codec options: recorded on first use, else they must equal the record.

    Raises ``CodecMismatch`` naming both. Producers check before their first
    write, so every record in the streams is encoded under the recorded options.
    """
    mine = codec_text(options)
    stored = await redis.hget(keys.meta, CODEC_FIELD)
    if stored is None:
        await redis.hsetnx(keys.meta, CODEC_FIELD, mine)
        stored = await redis.hget(keys.meta, CODEC_FIELD)
    text = as_text(stored)
    if text != mine:
        raise CodecMismatch(mine, text)


async def recorded_codec(redis: Redis, keys: KeySpace) -> CodecOptions[Any] | None:
    """The codec options producers recorded, or None if none has written yet."""
    stored = await redis.hget(keys.meta, CODEC_FIELD)
    if stored is None:
        return None
    return parse_codec_text(as_text(stored))


async def reader_codec(redis: Redis, keys: KeySpace) -> CodecOptions[Any]:
    """Options for reading records (worker, replay, dlq): the recorded ones, else the default.

    With nothing recorded, no producer of this version has written: any record
    there is was encoded with the default options.
    """
    return await recorded_codec(redis, keys) or DEFAULT_CODEC_OPTIONS
