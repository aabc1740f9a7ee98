"""From an SDK call to a MongoDB document, through a real worker."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


async def test_set_patch_delete_reach_mongodb(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await start_worker()
    users = wb.collection("users")
    await users.set("a", {"name": "Ada", "tags": ["x"], "op_like": "$set"})
    await users.set("b", {"name": "Bob"})
    await users.patch("a", {"age": 36})
    v_del = await users.delete("b")
    v_a = await users.patch("a", {"age": 37})
    await users.wait_persisted(v_a, timeout=20)
    await users.wait_persisted(v_del, timeout=20)

    stored = await mongo_db["users"].find_one({"_id": "a"})
    assert stored == {
        "_id": "a",
        "name": "Ada",
        "tags": ["x"],
        "op_like": "$set",
        "age": 37,
        "_wb": {"v": [v_a.ms, v_a.seq]},
    }
    tomb = await mongo_db["users"].find_one({"_id": "b"})
    assert set(tomb) == {"_id", "_wb"}
    assert tomb["_wb"]["deleted"] is True
    assert tomb["_wb"]["v"] == [v_del.ms, v_del.seq]
    assert await users.get("b") is None

    # Persisted entries get the clean TTL; once gone, reads come from MongoDB.
    key = wb.keys.cache(wb.keys.partition_of("users", "a"), "users", "a")
    assert await wait_until(lambda: redis.ttl(key), message="clean TTL") > 0
    await redis.delete(key)
    assert await users.get("a") == {k: v for k, v in stored.items() if k != "_wb"}


async def test_tombstones_get_a_sparse_ttl_index(
    wb: WriteBehind, start_worker: Any, mongo_db: Any
) -> None:
    await start_worker()
    users = wb.collection("users")
    await users.wait_persisted(await users.delete("gone"), timeout=20)
    indexes = await mongo_db["users"].index_information()

    ttl = indexes["writebehind_tombstone_ttl"]
    assert ttl["key"] == [("_wb.purge_at", 1)]
    assert ttl["expireAfterSeconds"] == 0
    assert ttl["sparse"] is True
    tomb = await mongo_db["users"].find_one({"_id": "gone"})
    grace = tomb["_wb"]["purge_at"] - dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert dt.timedelta(days=6) < grace <= dt.timedelta(days=7)


async def test_hard_delete_mode_removes_the_document(
    wb: WriteBehind, start_worker: Any, mongo_db: Any
) -> None:
    await start_worker(hard_deletes=True)
    users = wb.collection("users")
    await users.wait_persisted(await users.set("h", {"n": 1}), timeout=20)
    assert await mongo_db["users"].count_documents({"_id": "h"}) == 1
    version = await users.delete("h")
    await users.wait_persisted(version, timeout=20)
    assert await mongo_db["users"].count_documents({"_id": "h"}) == 0
    assert await users.get("h") is None
