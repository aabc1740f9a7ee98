"""Every dead-letter path settles the cache entry it concerns; wait_persisted says so at once.

After a letter is written, ``get`` returns what MongoDB holds (the entry at the
dead version is dropped), and ``wait_persisted`` on that version raises
``DeadLettered`` with the letter's id and reason instead of timing out.
"""

from __future__ import annotations

import secrets
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.streams import (
    cache_key,
    dead_letters,
    invalidation_records,
    letter_for_sole_record,
)
from writebehind import WriteBehind
from writebehind import errors as e
from writebehind.core.keys import KeySpace, encode_id
from writebehind.core.scripts import parse_write_reply
from writebehind.core.version import Version
from writebehind.sink.bulk import MongoSink
from writebehind.tools.dead_letters import Redriver, iter_letters
from writebehind.tools.replay import ReplayOptions, ReplayRange, replay

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)
REQUIRE_NAME = {"$jsonSchema": {"bsonType": "object", "required": ["name"]}}


async def _raises_dead_lettered(wb: WriteBehind, version: Version) -> e.DeadLettered:
    assert version.collection is not None
    with anyio.fail_after(15), pytest.raises(e.DeadLettered) as info:
        # A long timeout: it must not be waited out.
        await wb.collection(version.collection).wait_persisted(version, timeout=60)
    return info.value


async def _near_caches_told(redis: Redis, collection: str, doc_id: str, letter_id: str) -> None:
    """The letter's script also told near caches, on the invalidation stream they follow."""
    partition = KEYS.partition_of(collection, doc_id)
    records = await invalidation_records(redis, KEYS, partition)
    assert [(r["c"], r["i"]) for r in records] == [
        (collection.encode(), encode_id(doc_id).encode())
    ]
    assert f"{partition}/{records[0]['dl'].decode()}" == letter_id


async def test_a_malformed_record_settles_its_cache_entry(
    wb: WriteBehind, redis: Redis, start_worker: Any
) -> None:
    # A record no reader can decode (here: a body that is not BSON), with its cache entry.
    doc_id = "broken"
    partition = KEYS.partition_of("users", doc_id)
    entry = cache_key(KEYS, "users", doc_id)
    await wb.seeder.seed([partition], wb.reads.mongo_timeout)
    reply = await wb.scripts.write(
        keys=[KEYS.stream(partition), entry, KEYS.seeded(partition)],
        args=["set", "users", b"not bson", "", wb.group, 0, secrets.token_hex(8)],
    )
    version = parse_write_reply(reply).version
    assert version is not None
    await start_worker()
    letter = await _raises_dead_lettered(wb, version.for_document("users", doc_id))
    assert letter.letter_id.startswith(f"{partition}/") and "malformed" in letter.reason
    assert await redis.exists(entry) == 0
    await _near_caches_told(redis, "users", doc_id, letter.letter_id)
    assert await wb.collection("users").get(doc_id) is None  # what MongoDB holds


async def test_a_refused_write_raises_dead_lettered_at_once(
    wb: WriteBehind, redis: Redis, mongo_db: Any, start_worker: Any
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    ok = await people.set("p1", {"name": "Ada"})
    await start_worker()
    await people.wait_persisted(ok, timeout=20)
    bad = await people.set("p1", {"nickname": "no name"})
    letter = await _raises_dead_lettered(wb, bad)
    assert letter.version == bad and letter.reason
    await _near_caches_told(redis, "people", "p1", letter.letter_id)
    assert await people.get("p1") == {"_id": "p1", "name": "Ada"}


async def test_replay_dead_letters_settle_the_cache(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    bad = await people.set("p2", {"nickname": "no name"})  # no worker: replay applies it
    result = await replay(
        redis,
        MongoSink(mongo_db, prefix=KEYS.prefix),
        KEYS,
        ReplayOptions(ReplayRange.parse("0", None)),
    )
    assert result.dead_lettered == 1
    assert await redis.exists(cache_key(KEYS, "people", "p2")) == 0
    assert await people.get("p2") is None
    letter = await _raises_dead_lettered(wb, bad)
    await _near_caches_told(redis, "people", "p2", letter.letter_id)


async def test_a_redrive_refused_again_settles_the_cache(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    bad = await people.set("p3", {"nickname": "no name"})
    # A letter for it while its cache entry is still at that version.
    await letter_for_sole_record(redis, KEYS, KEYS.partition_of("people", "p3"))
    (letter,) = [letter async for letter in iter_letters(redis, KEYS)]
    await Redriver(redis, mongo_db, KEYS).redrive([letter])
    assert len(await dead_letters(redis, KEYS)) == 1  # replaced, refused again
    assert await redis.exists(cache_key(KEYS, "people", "p3")) == 0
    assert await people.get("p3") is None
    letter = await _raises_dead_lettered(wb, bad)
    await _near_caches_told(redis, "people", "p3", letter.letter_id)


async def test_wait_persisted_still_times_out_when_nothing_happens(wb: WriteBehind) -> None:
    v = await wb.collection("users").set("u", {"n": 1})
    with pytest.raises(e.PersistTimeout):
        await wb.collection("users").wait_persisted(v, timeout=0.2)


async def test_a_letter_leaves_a_newer_cache_entry_alone(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    await people.set("p4", {"nickname": "no name"})
    await letter_for_sole_record(redis, KEYS, KEYS.partition_of("people", "p4"))
    await people.set("p4", {"name": "Ada"})  # newer than the letter: not the letter's to settle
    (letter,) = [letter async for letter in iter_letters(redis, KEYS)]
    (outcome,) = await Redriver(redis, mongo_db, KEYS).redrive([letter])
    assert outcome.new_id is not None  # refused again
    assert await redis.exists(cache_key(KEYS, "people", "p4")) == 1
    assert await people.get("p4") == {"_id": "p4", "name": "Ada"}
