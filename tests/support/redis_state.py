"""Byte-exact snapshots of a Redis keyspace, to prove a refused write changed nothing."""

from __future__ import annotations

from redis.asyncio import Redis


async def snapshot(redis: Redis) -> dict[bytes, tuple[bytes | None, int]]:
    """Every key's serialized value (DUMP) and TTL."""
    state: dict[bytes, tuple[bytes | None, int]] = {}
    async for key in redis.scan_iter(count=1000):
        state[key] = (await redis.dump(key), await redis.pttl(key))
    return state
