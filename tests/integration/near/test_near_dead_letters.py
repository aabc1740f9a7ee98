"""A dead letter evicts the refused write from the near cache of another OS process.

The other process reads the refused write from Redis while it is dirty and
keeps it in its near cache (ttl 60 s there). Whatever writes the letter (the
worker, replay, a ``dlq replay`` refused again), the script that drops the
cache entry also appends an invalidation record, so within ``max_stale`` of
the letter that process's reads return what MongoDB holds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.near_peer import NearPeer
from tests.support.servers import RedisServer
from tests.support.streams import dead_letters, letter_for_sole_record
from writebehind import WriteBehind
from writebehind import errors as e
from writebehind.core.keys import KeySpace
from writebehind.core.version import Version
from writebehind.sink.bulk import MongoSink
from writebehind.tools.dead_letters import Redriver, iter_letters
from writebehind.tools.replay import ReplayOptions, ReplayRange, replay

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)
MAX_STALE = 0.5
WATCHED = MAX_STALE + 1.5
"""How long after the letter the peer's reads are watched (seconds)."""
REQUIRE_NAME = {"$jsonSchema": {"bsonType": "object", "required": ["name"]}}
DOC = "doc"


@pytest.fixture
def peers() -> Iterator[list[NearPeer]]:
    started: list[NearPeer] = []
    yield started
    for peer in started:
        peer.close()


Path = Callable[[WriteBehind, Redis, Any, Any, Version], Awaitable[None]]


async def _by_the_worker(
    wb: WriteBehind, redis: Redis, mongo_db: Any, start_worker: Any, refused: Version
) -> None:
    await start_worker()
    with anyio.fail_after(15), pytest.raises(e.DeadLettered):
        await wb.collection("users").wait_persisted(refused, timeout=60)


async def _by_replay(
    wb: WriteBehind, redis: Redis, mongo_db: Any, start_worker: Any, refused: Version
) -> None:
    options = ReplayOptions(ReplayRange.parse("0", None))
    result = await replay(redis, MongoSink(mongo_db, prefix=KEYS.prefix), KEYS, options)
    assert result.dead_lettered == 1


async def _by_a_redrive_refused_again(
    wb: WriteBehind, redis: Redis, mongo_db: Any, start_worker: Any, refused: Version
) -> None:
    await letter_for_sole_record(redis, KEYS, KEYS.partition_of("users", DOC))
    (letter,) = [letter async for letter in iter_letters(redis, KEYS)]
    (result,) = await Redriver(redis, mongo_db, KEYS).redrive([letter])
    assert result.outcome == "failed" and result.new_id is not None


PATHS: dict[str, Path] = {
    "worker": _by_the_worker,
    "replay": _by_replay,
    "dlq_replay_refused_again": _by_a_redrive_refused_again,
}


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_a_dead_letter_evicts_the_refused_write_from_another_processs_near_cache(
    path: str,
    wb: WriteBehind,
    redis: Redis,
    redis_server: RedisServer,
    mongo_url: str,
    mongo_db: Any,
    database_name: str,
    start_worker: Any,
    peers: list[NearPeer],
) -> None:
    await mongo_db.create_collection("users", validator=REQUIRE_NAME)
    await mongo_db.users.insert_one({"_id": DOC, "n": 1, "name": "Ada", "_wb": {"v": [1, 0]}})
    peer = NearPeer(redis_server.url, mongo_url, database_name, DOC, MAX_STALE)
    peers.append(peer)
    await peer.ready()
    refused = await wb.collection("users").set(DOC, {"n": 2})  # no name: MongoDB refuses it
    await peer.wait_seen("2")  # read from Redis while dirty, and kept in its near cache
    await PATHS[path](wb, redis, mongo_db, start_worker, refused)
    lettered = time.monotonic()
    assert len(await dead_letters(redis, KEYS)) == 1
    await peer.wait_seen("1", within=MAX_STALE + 10)  # what MongoDB holds
    # The peer goes on reading for a while: a near cache still holding the refused
    # write would return it again (its reads leave the near cache only while stale).
    await anyio.sleep(lettered + WATCHED - time.monotonic())
    report = await peer.finish()
    seen = report["seen"]
    assert report["near_hits"] > 0, "the peer was not reading its near cache"
    last_refused = seen["2"][1]  # the last read that returned the refused write began then
    assert last_refused <= lettered + MAX_STALE, (
        f"a read begun {last_refused - lettered:.3f}s after the letter returned the refused write"
    )
    assert max(span[1] for span in seen.values()) >= lettered + MAX_STALE + 0.5, (
        "the peer stopped reading too early"
    )
