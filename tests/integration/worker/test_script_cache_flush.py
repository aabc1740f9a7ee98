"""The worker's pipelined acks and dead-letter moves survive an emptied script cache.

``SCRIPT FLUSH`` runs every few milliseconds while the worker drains: each
pipeline of scripts is re-sent after loading what is missing, instead of
failing its batch and leaving the entries to be reclaimed after a timeout.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.streams import dead_letters, pending_total
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio

REQUIRE_NAME = {"$jsonSchema": {"bsonType": "object", "required": ["name"]}}


async def test_acks_and_dead_letters_survive_script_flushes(
    wb: WriteBehind, redis: Redis, mongo_db: Any, start_worker: Any
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    worker = await start_worker(claim_idle=60.0)  # nothing may need reclaiming
    stop = anyio.Event()

    async def flush() -> None:
        while not stop.is_set():
            await redis.script_flush()
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(flush)
        versions = []
        for n in range(200):
            doc = {"name": f"n{n}"} if n % 20 else {"nickname": "refused"}
            versions.append(await people.set(f"p{n}", doc))
        for n, version in enumerate(versions):
            if n % 20:
                await people.wait_persisted(version, timeout=20)
        await wait_until(lambda: _all_letters(redis, wb, 10), timeout=20, message="10 dead letters")
        await wait_until(lambda: _nothing_pending(redis, wb), timeout=20, message="all acked")
        stop.set()
    assert worker.stats.claimed == 0
    assert worker.stats.dead_lettered == 10


async def _all_letters(redis: Redis, wb: WriteBehind, count: int) -> bool:
    return len(await dead_letters(redis, wb.keys)) == count


async def _nothing_pending(redis: Redis, wb: WriteBehind) -> bool:
    return await pending_total(redis, wb.keys) == 0
