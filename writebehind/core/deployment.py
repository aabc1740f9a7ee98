"""The deployment's metadata in Redis: the partition count producers and workers agree on."""

from __future__ import annotations

from redis.asyncio import Redis

from writebehind.core.errors import PartitionCountMismatch
from writebehind.core.keys import KeySpace


async def check_partitions(redis: Redis, keys: KeySpace) -> None:
    """Record the partition count on first use; refuse a count that differs from it."""
    stored = int(await redis.hget(keys.meta, "partitions") or 0)
    if not stored:
        # Written only when missing: a worker must start on a Redis at maxmemory.
        await redis.hsetnx(keys.meta, "partitions", keys.partitions)
        stored = int(await redis.hget(keys.meta, "partitions") or 0)
    if stored != keys.partitions:
        raise PartitionCountMismatch(keys.partitions, stored)
