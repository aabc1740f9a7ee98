"""Helpers for worker tests: look at and poke the partition streams as another client would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from redis.asyncio import Redis

from tests.support.config import fast_settings
from tests.support.waiting import wait_until
from writebehind.core.keys import KeySpace
from writebehind.core.version import Version
from writebehind.worker.runner import Worker

GROUP = "writebehind"


def ids_in_partition(
    keys: KeySpace, collection: str, partition: int, count: int, stem: str = "doc"
) -> list[str]:
    """``count`` string ids of ``collection`` that map to ``partition``."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        doc_id = f"{stem}-{n}"
        if keys.partition_of(collection, doc_id) == partition:
            found.append(doc_id)
        n += 1
    return found


def cache_key(keys: KeySpace, collection: str, doc_id: Any) -> str:
    return keys.cache(keys.partition_of(collection, doc_id), collection, doc_id)


def stream_of(keys: KeySpace, collection: str, doc_id: Any) -> str:
    return keys.stream(keys.partition_of(collection, doc_id))


async def create_groups(redis: Redis, keys: KeySpace) -> None:
    """Create the workers' group on every partition, as a worker's start-up would."""
    for stream in keys.streams():
        await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)


async def ghost_read(
    redis: Redis, stream: str, consumer: str = "ghost", count: int | None = None
) -> list[bytes]:
    """Read new entries as a consumer that then vanishes without acking; returns their ids."""
    reply: Any = await redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=count)
    return [eid for _, entries in reply or [] for eid, _ in entries]


async def stream_ids(redis: Redis, stream: str) -> list[bytes]:
    entries: Any = await redis.xrange(stream)
    return [eid for eid, _ in entries]


async def dead_letters(
    redis: Redis, keys: KeySpace, partition: int | None = None
) -> list[dict[str, bytes]]:
    """Every dead letter (of one partition, or all), fields keyed by str, values as bytes."""
    partitions = range(keys.partitions) if partition is None else [partition]
    letters: list[dict[str, bytes]] = []
    for p in partitions:
        entries: Any = await redis.xrange(keys.dead_letters(p))
        for _, fields in entries:
            letters.append({k.decode(): v for k, v in fields.items()})
    return letters


async def letter_for_sole_record(redis: Redis, keys: KeySpace, partition: int) -> None:
    """Add a letter for the one record of ``partition``'s stream, leaving its cache entry as is.

    As after a worker crashed between the letter and its cache step in an older
    release: the cache entry is still at the letter's version.
    """
    rows: Any = await redis.xrange(keys.stream(partition))
    ((entry_id, fields),) = rows
    letter_id = await redis.xadd(
        keys.dead_letters(partition),
        {**fields, "source_id": entry_id, "ov": entry_id, "error": "x", "error_kind": "permanent"},
    )
    await redis.hset(keys.dead_letter_sources(partition), entry_id, letter_id)


async def invalidation_records(
    redis: Redis, keys: KeySpace, partition: int
) -> list[dict[str, bytes]]:
    """The records of ``partition``'s invalidation stream (what near caches evict), oldest first."""
    entries: Any = await redis.xrange(keys.invalidations(partition))
    return [{k.decode(): v for k, v in fields.items()} for _, fields in entries]


async def pending_total(redis: Redis, keys: KeySpace) -> int:
    total = 0
    for stream in keys.streams():
        summary: Any = await redis.xpending(stream, GROUP)
        total += int(summary["pending"])
    return total


async def drained(redis: Redis, keys: KeySpace) -> bool:
    """No entry of any partition is pending: every record delivered was acknowledged."""
    return await pending_total(redis, keys) == 0


async def wait_dead_letters(
    redis: Redis, keys: KeySpace, count: int, partition: int | None = None, timeout: float = 20
) -> list[dict[str, bytes]]:
    """Wait until there are at least ``count`` dead letters (of one partition, or all)."""

    async def probe() -> Any:
        letters = await dead_letters(redis, keys, partition)
        return letters if len(letters) >= count else None

    result: list[dict[str, bytes]] = await wait_until(
        probe, message=f"{count} dead letter(s)", timeout=timeout
    )
    return result


async def redis_now_ms(redis: Redis) -> int:
    """The Redis server's clock, in milliseconds: the clock stream ids come from."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def consumers(redis: Redis, stream: str) -> dict[str, int]:
    """Consumer name -> pending count on ``stream``."""
    rows: Any = await redis.xinfo_consumers(stream, GROUP)
    return {
        (r["name"].decode() if isinstance(r["name"], bytes) else r["name"]): int(r["pending"])
        for r in rows
    }


async def stored_version(collection: Any, doc_id: Any) -> Version | None:
    doc = await collection.find_one({"_id": doc_id})
    if doc is None:
        return None
    return Version.from_pair(doc["_wb"]["v"])


def replay_fields(op: str, collection: str, body: bytes, version: Any) -> dict[str, Any]:
    """A record re-added to a stream as replay does: with its original version in ``ov``."""
    return {"op": op, "c": collection, "d": body, "ov": str(version)}


@asynccontextmanager
async def fail_point(mongo_client: Any, mode: Any, data: Mapping[str, Any]) -> AsyncIterator[None]:
    """``failCommand`` on for the block, and always off after it."""
    await mongo_client.admin.command("configureFailPoint", "failCommand", mode=mode, data=data)
    try:
        yield
    finally:
        await mongo_client.admin.command("configureFailPoint", "failCommand", mode="off")


@asynccontextmanager
async def running_worker(redis_url: str, database: Any, **overrides: Any) -> AsyncIterator[Worker]:
    """An in-process worker on any database, drained when the block ends.

    For tests that stop and restart workers, or use a private MongoDB
    (``start_worker`` is tied to the shared one).
    """
    client = Redis.from_url(redis_url)
    worker = Worker(client, database, fast_settings(**overrides))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            with anyio.fail_after(30):
                await worker.started.wait()
            try:
                yield worker
            finally:
                worker.request_stop()
    finally:
        await client.aclose()
