"""writebehind.core.groups on a real Redis: a stream's consumer groups, or none."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from writebehind.core.groups import consumer_group, consumer_groups

pytestmark = pytest.mark.anyio


async def test_a_missing_stream_has_no_groups(redis: Redis) -> None:
    assert await consumer_groups(redis, "{t:p0}:stream") == []
    assert await consumer_group(redis, "{t:p0}:stream", "writebehind") is None


async def test_groups_are_found_by_name_as_text(redis: Redis) -> None:
    stream = "{t:p0}:stream"
    await redis.xadd(stream, {"f": "v"})
    await redis.xgroup_create(stream, "writebehind", id="0")
    await redis.xgroup_create(stream, "other", id="$")
    names = [info["name"] for info in await consumer_groups(redis, stream)]
    assert sorted(names) == ["other", "writebehind"]
    info: Any = await consumer_group(redis, stream, "writebehind")
    assert info is not None
    assert info["pending"] == 0
    assert await consumer_group(redis, stream, "nobody") is None


async def test_other_failures_are_raised(redis: Redis) -> None:
    await redis.set("{t:p0}:stream", "not a stream")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await consumer_groups(redis, "{t:p0}:stream")
