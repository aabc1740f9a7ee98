"""Looking up a stream's consumer groups (``XINFO GROUPS``), one round trip each.

A stream that does not exist has no groups (``XINFO`` replies ``no such key``).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from writebehind.core.replies import as_text, is_no_such_key


async def consumer_groups(redis: Redis, stream: str) -> list[dict[str, Any]]:
    """Every group of ``stream`` as ``XINFO GROUPS`` describes it; ``[]`` without the stream.

    Each dict has ``name`` (as ``str``), ``pending``, ``last-delivered-id``
    and, on Redis 7+, ``lag`` (https://redis.io/docs/latest/commands/xinfo-groups/).
    Raises ``redis.exceptions.RedisError`` on other failures.
    """
    try:
        groups: Any = await redis.xinfo_groups(stream)
    except Exception as exc:
        if is_no_such_key(exc):
            return []
        raise
    return [{**info, "name": as_text(info["name"])} for info in groups]


async def consumer_group(redis: Redis, stream: str, group: str) -> dict[str, Any] | None:
    """``group``'s entry of ``XINFO GROUPS`` (see ``consumer_groups``), or None if it is absent."""
    for info in await consumer_groups(redis, stream):
        if info["name"] == group:
            return info
    return None
