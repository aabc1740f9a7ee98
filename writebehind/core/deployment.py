"""The deployment's metadata in Redis: the partition count producers and workers agree on.

Producers and workers record the count on first use (``record_partition_count``);
operator tools only read it (``verify_partition_count``), so a tool pointed at
the wrong prefix never claims it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from writebehind.core.errors import PartitionCountMismatch
from writebehind.core.keys import KeySpace

_FIELD = "partitions"


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
