"""Consumers that left the group are removed, but never while they hold pending entries."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.streams import (
    GROUP,
    consumers,
    create_groups,
    ghost_read,
    pending_total,
)
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio


async def test_idle_consumers_are_pruned_only_once_nothing_is_pending_on_them(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await create_groups(redis, wb.keys)
    users = wb.collection("users")
    versions = [await users.set(f"u{i}", {"n": i}) for i in range(12)]
    streams = wb.keys.streams()
    holding = {}
    for stream in streams:
        holding[stream] = len(await ghost_read(redis, stream, "crashed"))
        await redis.xgroup_createconsumer(stream, GROUP, "idle")
    assert sum(holding.values()) == 12

    # Claims only after 3 s of idleness; housekeeping every 0.1 s, and any
    # consumer idle for 0 ms with nothing pending may go.
    worker: Worker = await start_worker(
        claim_idle=3.0, claim_interval=0.1, trim_interval=0.1, consumer_idle=0
    )

    async def idle_gone() -> bool:
        return not await _holders(redis, streams, "idle")

    await wait_until(idle_gone, message="the consumer with nothing pending removed", timeout=10)
    # The crashed consumer's entries are not claimable yet: it must still be there.
    for stream in streams:
        if holding[stream]:
            assert (await consumers(redis, stream)).get("crashed") == holding[stream]
    assert worker.stats.claimed == 0

    # Once the worker has claimed (and persisted) its entries, it goes too.
    for version in versions:
        await users.wait_persisted(version, timeout=20)

    async def crashed_gone() -> bool:
        return not await _holders(redis, streams, "crashed")

    await wait_until(crashed_gone, message="the drained consumer removed", timeout=10)
    assert worker.stats.claimed == 12
    assert await pending_total(redis, wb.keys) == 0
    assert worker.settings.consumer in await consumers(redis, streams[0])


async def _holders(redis: Redis, streams: list[str], name: str) -> list[str]:
    """The streams on which consumer ``name`` still exists."""
    return [s for s in streams if name in await consumers(redis, s)]
