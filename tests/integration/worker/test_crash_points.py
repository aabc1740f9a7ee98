"""A worker killed inside the windows that matter: after its MongoDB write and before
the XACK, and around a dead-letter move. The next worker finishes the job exactly once.

These also show that the crash points of tests/support/crashpoints.py (used by
the fault suite) stop the worker where they say.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.config import SpawnWorker
from tests.support.streams import dead_letters, pending_total, stored_version
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


async def _crash(
    spawn_worker: SpawnWorker, mongo_url: str, database: str, point: str
) -> dict[str, Any]:
    proc = spawn_worker(mongo_url, database, consumer="doomed", crash_at=(point, 1))
    await proc.wait_exit(within=30)
    event = proc.crash_point()
    assert event is not None, proc.output()[-3000:]
    assert event["point"] == point
    return event


async def test_killed_between_mongodb_write_and_ack_is_finished_by_the_next_worker(
    wb: WriteBehind,
    redis: Redis,
    mongo_db: Any,
    mongo_url: str,
    database_name: str,
    spawn_worker: SpawnWorker,
    start_worker: Any,
) -> None:
    users = wb.collection("users")
    version = await users.set("ada", {"n": 1})

    await _crash(spawn_worker, mongo_url, database_name, "after_write")
    # MongoDB has it; Redis still holds it pending for the dead consumer.
    assert await stored_version(mongo_db["users"], "ada") == version
    assert await pending_total(redis, wb.keys) == 1

    worker = await start_worker()
    await wait_until(lambda: _none_pending(redis, wb), message="the claimer acknowledges it")
    assert worker.stats.claimed == 1
    assert await stored_version(mongo_db["users"], "ada") == version
    assert await mongo_db["users"].find_one({"_id": "ada"}, {"_wb": 0}) == {"_id": "ada", "n": 1}
    assert await dead_letters(redis, wb.keys) == []


@pytest.mark.parametrize(
    ("point", "moved_before_restart"),
    [("before_dead_letter", 0), ("during_dead_letter", 1), ("after_dead_letter", 1)],
)
async def test_killed_around_a_dead_letter_move_leaves_exactly_one_letter(
    point: str,
    moved_before_restart: int,
    wb: WriteBehind,
    redis: Redis,
    mongo_db: Any,
    mongo_url: str,
    database_name: str,
    spawn_worker: SpawnWorker,
    start_worker: Any,
) -> None:
    await mongo_db.create_collection(
        "strict", validator={"$jsonSchema": {"properties": {"age": {"bsonType": "int"}}}}
    )
    strict = wb.collection("strict")
    poison = await strict.set("bad", {"age": "old"})

    await _crash(spawn_worker, mongo_url, database_name, point)

    async def letters_moved() -> bool:
        return len(await dead_letters(redis, wb.keys)) == moved_before_restart

    # A move sent just before the kill is still carried out by Redis.
    await wait_until(letters_moved, message=f"{moved_before_restart} letters after the kill")
    assert await pending_total(redis, wb.keys) == 1 - moved_before_restart

    await start_worker()
    await wait_until(lambda: _none_pending(redis, wb), message="nothing pending")
    letters = await dead_letters(redis, wb.keys)
    assert [(x["c"], x["ov"]) for x in letters] == [(b"strict", str(poison).encode())]
    assert await mongo_db["strict"].count_documents({}) == 0


async def _none_pending(redis: Redis, wb: WriteBehind) -> bool:
    return await pending_total(redis, wb.keys) == 0
