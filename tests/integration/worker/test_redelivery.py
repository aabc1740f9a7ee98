"""Records applied again (redelivered, replayed, re-driven) never move a document back."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.streams import GROUP, cache_key, drained, replay_fields, stream_of
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio


async def _processed(redis: Redis, stream: str, entry_id: bytes) -> bool:
    """The group has read up to ``entry_id`` and holds nothing pending on ``stream``."""
    [group] = [g for g in await redis.xinfo_groups(stream) if g["name"] == GROUP.encode()]
    return group["last-delivered-id"] == entry_id and group["pending"] == 0


async def _readd(redis: Redis, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> bytes:
    """Re-add a record as replay does: same fields, its original version in ``ov``."""
    original = fields.get(b"ov", entry_id)
    return bytes(
        await redis.xadd(
            stream,
            replay_fields(
                fields[b"op"].decode(), fields[b"c"].decode(), fields[b"d"], original.decode()
            ),
        )
    )


async def test_replayed_older_write_does_not_resurrect_a_deleted_document(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await start_worker()
    users = wb.collection("users")
    first = await users.set("x", {"name": "first"})
    second = await users.set("x", {"name": "second"})
    await users.wait_persisted(second, timeout=20)
    gone = await users.delete("x")
    await users.wait_persisted(gone, timeout=20)
    stream = stream_of(wb.keys, "users", "x")
    history = await redis.xrange(stream)
    assert [eid.decode() for eid, _ in history] == [str(first), str(second), str(gone)]

    # Replay the older sets, newest first and oldest last, after the delete.
    for entry_id, fields in reversed(history[:2]):
        last = await _readd(redis, stream, entry_id, fields)
    await wait_until(lambda: _processed(redis, stream, last), message="replay processed")

    tomb = await mongo_db["users"].find_one({"_id": "x"})
    assert set(tomb) == {"_id", "_wb"}
    assert tomb["_wb"]["deleted"] is True
    assert tomb["_wb"]["v"] == gone.as_pair()
    assert await users.get("x") is None
    # Also once the cache entry is gone and reads go to MongoDB.
    await redis.delete(cache_key(wb.keys, "users", "x"))
    assert await users.get("x") is None


async def test_a_record_claimed_again_after_the_delete_does_not_resurrect(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    """A late redelivery: the same entry (same id, no ``ov``) comes round again by claim."""
    worker: Worker = await start_worker(claim_idle=0.2, claim_interval=0.1)
    users = wb.collection("users")
    first = await users.set("z", {"name": "zombie"})
    await users.wait_persisted(first, timeout=20)
    gone = await users.delete("z")
    await users.wait_persisted(gone, timeout=20)

    # Put the acknowledged set record back in the pending list of a consumer
    # that went away; the worker claims and applies it again.
    stream = stream_of(wb.keys, "users", "z")
    await redis.xclaim(stream, GROUP, "ghost", 0, [str(first)], force=True)
    assert (await redis.xpending(stream, GROUP))["pending"] == 1
    await wait_until(lambda: drained(redis, wb.keys), message="redelivery processed")
    assert worker.stats.claimed == 1

    tomb = await mongo_db["users"].find_one({"_id": "z"})
    assert tomb["_wb"] == {**tomb["_wb"], "deleted": True, "v": gone.as_pair()}
    assert await users.get("z") is None


async def test_replayed_records_out_of_stream_order_end_at_the_newest_version(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    """A replay may re-add a range newest first; in one batch the highest version still wins."""
    users = wb.collection("users")
    older = await users.set("r", {"n": 1})
    newer = await users.set("r", {"n": 2})
    stream = stream_of(wb.keys, "users", "r")
    history = await redis.xrange(stream)
    # Replace the originals by copies in reverse order (as if only the replay
    # had them), all read in the worker's first batch.
    for entry_id, fields in reversed(history):
        last = await _readd(redis, stream, entry_id, fields)
    await redis.xdel(stream, *(eid for eid, _ in history))

    worker: Worker = await start_worker()
    await wait_until(lambda: _processed(redis, stream, last), message="replay processed")
    assert worker.stats.batches == 1
    assert await mongo_db["users"].find_one({"_id": "r"}) == {
        "_id": "r",
        "n": 2,
        "_wb": {"v": newer.as_pair()},
    }
    assert older < newer


async def test_replaying_a_whole_run_again_changes_nothing(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    worker: Worker = await start_worker()
    users, orders = wb.collection("users"), wb.collection("orders")
    newest = {}
    for round_ in range(3):
        for i in range(12):
            newest[("users", i)] = await users.set(i, {"round": round_, "name": f"u{i}"})
            newest[("orders", f"o{i}")] = await orders.patch(f"o{i}", {f"r{round_}": i})
    for i in range(0, 12, 3):
        newest[("users", i)] = await users.delete(i)
    for version in newest.values():
        await wb.collection(version.collection).wait_persisted(version, timeout=20)

    async def snapshot() -> dict[str, list[dict[str, Any]]]:
        return {
            name: [doc async for doc in mongo_db[name].find().sort("_id", 1)]
            for name in ("users", "orders")
        }

    async def settled(expected: int) -> bool:
        done = worker.stats.persisted + worker.stats.dead_lettered
        return done >= expected and await drained(redis, wb.keys)

    before = await snapshot()
    assert len(before["users"]) == 12
    assert len(before["orders"]) == 12
    originals = {s: await redis.xrange(s) for s in wb.keys.streams()}
    total = sum(len(entries) for entries in originals.values())
    for replay in range(2):
        start = worker.stats.persisted + worker.stats.dead_lettered
        for stream, entries in originals.items():
            # Once in order, once newest first.
            for entry_id, fields in entries if replay == 0 else reversed(entries):
                await _readd(redis, stream, entry_id, fields)
        await wait_until(lambda start=start: settled(start + total), message="replay processed")
        assert await snapshot() == before
    assert worker.stats.dead_lettered == 0
