"""Writes and reads through the SDK against a real Redis and a MongoDB-wire server."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson import Decimal128, ObjectId
from bson.binary import Binary
from redis.asyncio import Redis

from writebehind import Version, WriteBehind
from writebehind.core.codec import decode_record

pytestmark = pytest.mark.anyio

IDS: list[Any] = [
    "plain",
    "with {braces} and: colons",
    "}{",
    "spaces  and\ttabs",
    "ünïcødé ✓ 日本",
    "",
    42,
    -7,
    2**63 - 1,
    ObjectId("65f000000000000000000001"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
]


def rich_document() -> dict[str, Any]:
    return {
        "when": dt.datetime(2024, 5, 1, 12, 30, 45, 123000),
        "oid": ObjectId("65f0000000000000000000aa"),
        "price": Decimal128(Decimal("19.99")),
        "raw": b"\x00\x01\xff",
        "uid": uuid.UUID("87654321-4321-8765-4321-876543218765"),
        "nested": {"list": [1, "two", {"three": [3.5, None, True]}], "empty": {}},
        "looks_like_operator": "$set",
        "looks_like_path": "$$ROOT.a.b",
        "big": 2**62,
        "binary_sub": Binary(b"xyz", 0x80),
    }


@pytest.mark.parametrize("doc_id", IDS, ids=repr)
async def test_every_id_type_round_trips_through_the_cache(wb: WriteBehind, doc_id: Any) -> None:
    users = wb.collection("users")
    version = await users.set(doc_id, {"name": "x"})
    got = await users.get(doc_id)
    assert got == {"_id": doc_id, "name": "x"}
    assert isinstance(got["_id"], type(doc_id))  # bson.Int64 is an int, as from MongoDB
    assert isinstance(version, Version)


async def test_int_and_string_ids_are_different_documents(wb: WriteBehind) -> None:
    users = wb.collection("users")
    await users.set(42, {"n": "int"})
    await users.set("42", {"n": "str"})
    assert (await users.get(42))["n"] == "int"  # type: ignore[index]
    assert (await users.get("42"))["n"] == "str"  # type: ignore[index]


async def test_bson_types_round_trip_like_mongodb(wb: WriteBehind, mongo_db: Any) -> None:
    doc = rich_document()
    users = wb.collection("users")
    await users.set("rich", doc)
    cached = await users.get("rich")
    # What MongoDB gives back for the same document is the reference.
    await mongo_db["reference"].insert_one({"_id": "rich", **doc})
    from_mongo = await mongo_db["reference"].find_one({"_id": "rich"})
    assert cached == from_mongo
    assert list(cached) == list(from_mongo)  # type: ignore[arg-type]
    assert cached["binary_sub"] == Binary(b"xyz", 0x80)  # type: ignore[index]


async def test_get_falls_back_to_mongodb_without_metadata(wb: WriteBehind, mongo_db: Any) -> None:
    await mongo_db["users"].insert_one({"_id": "m1", "name": "from mongo", "_wb": {"v": [1, 0]}})
    await mongo_db["users"].insert_one({"_id": "gone", "_wb": {"v": [1, 0], "deleted": True}})
    users = wb.collection("users")
    assert await users.get("m1") == {"_id": "m1", "name": "from mongo"}
    assert await users.get("gone") is None
    assert await users.get("never") is None


async def test_stream_record_and_cache_entry_agree(wb: WriteBehind, redis: Redis) -> None:
    users = wb.collection("users")
    version = await users.set("u1", {"name": "a", "n": 1})
    partition = wb.keys.partition_of("users", "u1")
    entry = await redis.hgetall(wb.keys.cache(partition, "users", "u1"))
    [(entry_id, fields)] = await redis.xrange(wb.keys.stream(partition))
    record = decode_record(entry_id, fields)
    assert str(version) == entry_id.decode() == entry[b"v"].decode()
    assert record.version == version
    assert record.op == "set" and record.collection == "users"
    assert record.body == entry[b"d"]
    assert bson.decode(record.body) == {"_id": "u1", "name": "a", "n": 1}
    assert b"t" not in entry


async def test_delete_writes_a_tombstone_that_hides_mongodb(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db["users"].insert_one({"_id": "d1", "name": "old", "_wb": {"v": [1, 0]}})
    users = wb.collection("users")
    version = await users.delete("d1")
    assert await users.get("d1") is None
    partition = wb.keys.partition_of("users", "d1")
    [(entry_id, fields)] = await redis.xrange(wb.keys.stream(partition))
    record = decode_record(entry_id, fields)
    assert record.op == "del" and record.version == version
    assert bson.decode(record.body) == {"_id": "d1"}
    assert version.deleted


async def test_versions_increase_per_document(wb: WriteBehind) -> None:
    users = wb.collection("users")
    versions = [await users.set("v", {"i": i}) for i in range(20)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 20
    assert (await users.get("v"))["i"] == 19  # type: ignore[index]


async def test_dirty_entries_have_no_ttl_even_if_the_entry_had_one(
    wb: WriteBehind, redis: Redis
) -> None:
    users = wb.collection("users")
    await users.set("t1", {"a": 1})
    key = wb.keys.cache(wb.keys.partition_of("users", "t1"), "users", "t1")
    assert await redis.ttl(key) == -1
    await redis.expire(key, 100)  # as the worker does once a version is persisted
    await users.patch("t1", {"b": 2})
    assert await redis.ttl(key) == -1
    await redis.expire(key, 100)
    await users.delete("t1")
    assert await redis.ttl(key) == -1


async def test_patch_merges_top_level_and_creates_missing(wb: WriteBehind) -> None:
    users = wb.collection("users")
    await users.patch("p1", {"a": 1})
    await users.patch("p1", {"b": {"x": 1}})
    await users.patch("p1", {"b": {"y": 2}, "a": 3})
    assert await users.get("p1") == {"_id": "p1", "a": 3, "b": {"y": 2}}


async def test_patch_of_a_document_only_in_mongodb_starts_from_it(
    wb: WriteBehind, mongo_db: Any
) -> None:
    await mongo_db["users"].insert_one({"_id": "m2", "name": "kept", "_wb": {"v": [1, 0]}})
    users = wb.collection("users")
    await users.patch("m2", {"age": 3})
    assert await users.get("m2") == {"_id": "m2", "name": "kept", "age": 3}


async def test_patch_after_delete_starts_from_nothing(wb: WriteBehind, mongo_db: Any) -> None:
    await mongo_db["users"].insert_one({"_id": "m3", "name": "old", "_wb": {"v": [1, 0]}})
    users = wb.collection("users")
    await users.delete("m3")
    await users.patch("m3", {"fresh": True})
    assert await users.get("m3") == {"_id": "m3", "fresh": True}


async def test_modify_sync_async_and_delete(wb: WriteBehind) -> None:
    users = wb.collection("users")
    seen: list[Any] = []

    def first(doc: dict[str, Any] | None) -> dict[str, Any]:
        seen.append(doc)
        return {"count": 1}

    async def increment(doc: dict[str, Any] | None) -> dict[str, Any]:
        assert doc is not None
        return {**doc, "count": doc["count"] + 1}

    await users.modify("c", first)
    await users.modify("c", increment)
    assert seen == [None]
    assert await users.get("c") == {"_id": "c", "count": 2}
    version = await users.modify("c", lambda doc: None)
    assert version.deleted
    assert await users.get("c") is None


async def test_set_many_returns_one_version_each_in_order(wb: WriteBehind) -> None:
    users = wb.collection("users")
    versions = await users.set_many([(i, {"i": i}) for i in range(30)] + [(0, {"i": "last"})])
    assert len(versions) == 31
    assert versions[-1] > versions[0]
    assert [v.doc_id for v in versions[:30]] == list(range(30))
    assert (await users.get(0)) == {"_id": 0, "i": "last"}
    assert (await users.get(29)) == {"_id": 29, "i": 29}
    assert await users.set_many([]) == []


async def test_prefixes_do_not_see_each_other(redis: Redis, mongo_db: Any) -> None:
    async with (
        WriteBehind(redis=redis, mongo=mongo_db, prefix="app1") as a,
        WriteBehind(redis=redis, mongo=mongo_db, prefix="app2") as b,
    ):
        await a.collection("users").set("same", {"owner": "a"})
        assert await b.collection("users").get("same") is None
        await b.collection("users").set("same", {"owner": "b"})
        assert (await a.collection("users").get("same"))["owner"] == "a"  # type: ignore[index]
    async for key in redis.scan_iter():
        assert key.startswith((b"{app1", b"{app2"))


async def test_write_survives_script_cache_flush(wb: WriteBehind, redis: Redis) -> None:
    """After a Redis restart the script cache is empty (NOSCRIPT); writes reload it."""
    users = wb.collection("users")
    await users.set("s", {"n": 1})
    await redis.script_flush()
    await users.set("s", {"n": 2})
    await redis.script_flush()
    await users.set_many([("s", {"n": 3})])
    assert (await users.get("s"))["n"] == 3  # type: ignore[index]


async def test_reads_are_counted_per_level(wb: WriteBehind, mongo_db: Any) -> None:
    from prometheus_client import REGISTRY

    def count(level: str, outcome: str) -> float:
        value = REGISTRY.get_sample_value(
            "writebehind_sdk_reads_total",
            {"collection": "counted", "level": level, "outcome": outcome},
        )
        return value or 0.0

    seen = [("redis", "hit"), ("mongodb", "hit"), ("mongodb", "miss"), ("redis", "negative_hit")]
    before = {k: count(*k) for k in seen}
    await mongo_db["counted"].insert_one({"_id": "m", "_wb": {"v": [1, 0]}})
    users = wb.collection("counted")
    await users.set("r", {})
    await users.get("r")
    await users.get("m")
    await users.get("absent")
    await users.get("absent")
    assert count("redis", "hit") - before[("redis", "hit")] == 1
    assert count("mongodb", "hit") - before[("mongodb", "hit")] == 1
    # The first miss of "absent" is remembered (negative caching): the second is a Redis hit.
    assert count("mongodb", "miss") - before[("mongodb", "miss")] == 1
    assert count("redis", "negative_hit") - before[("redis", "negative_hit")] == 1


async def test_a_write_sent_twice_is_made_once(wb: WriteBehind, redis: Redis) -> None:
    """A client re-sending the script after a lost reply gets the first result back."""
    users = wb.collection("users")
    await users.set("n", {"count": 1})
    prepared = users._prepare("n", {"count": 2})
    args = users._args(prepared, "")
    first = await wb.scripts.write(keys=prepared.script_keys, args=args)
    again = await wb.scripts.write(keys=prepared.script_keys, args=args)
    assert first == again
    assert await redis.xlen(prepared.stream) == 2  # the first set, then this one once
    other = users._args(prepared, "")
    assert await wb.scripts.write(keys=prepared.script_keys, args=other) != first
