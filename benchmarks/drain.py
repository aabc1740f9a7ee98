"""Comparison 3: drain rate of the worker with its defaults against the best bare loop.

The same records (one per document, so coalescing cannot flatter the worker)
are drained by (a) a bare loop of version-guarded, journaled, unordered
``bulk_write``s, its batch size swept, and (b) an in-process ``Worker`` with
default settings, and with fixed ``concurrency`` values swept (to judge the
adaptive limit against the best fixed one). Directly, and with MongoDB behind
a delay line of ``latency`` seconds each way.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import anyio
import bson
from pymongo import AsyncMongoClient
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from benchmarks.common import small_document
from writebehind import WriteBehind
from writebehind.core.codec import ChangeRecord
from writebehind.core.version import Version
from writebehind.settings import Settings
from writebehind.sink.guards import PURGE_FIELD, Pending, guarded_write
from writebehind.worker.runner import Worker

PARTITIONS = 16


async def bare_loop(db: Any, records: int, batch_size: int, name: str) -> float:
    """Records per second of a loop of guarded, journaled ``bulk_write``s (one at a time)."""
    coll = db.get_collection(name, write_concern=WriteConcern(w=1, j=True))
    await coll.create_index(PURGE_FIELD, expireAfterSeconds=0, sparse=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    grace = dt.timedelta(days=7)
    pendings = []
    for i in range(records):
        doc = {"_id": i, **small_document(i)}
        record = ChangeRecord(f"{i + 1}-0", Version(i + 1, 0), "set", name, bson.encode(doc))
        pendings.append(Pending(record, doc))
    started = time.perf_counter()
    for start in range(0, records, batch_size):
        models = [
            guarded_write(p, now=now, tombstone_grace=grace)
            for p in pendings[start : start + batch_size]
        ]
        await coll.bulk_write(models, ordered=False)
    return records / (time.perf_counter() - started)


async def backlog(redis: Redis, db: Any, records: int, prefix: str) -> None:
    """``records`` writes through the SDK, not timed: the backlog a worker drains."""
    async with WriteBehind(
        redis=redis, mongo=db, prefix=prefix, partitions=PARTITIONS, max_backlog=0
    ) as wb:
        users = wb.collection("drained")
        for start in range(0, records, 1000):
            await users.set_many(
                [(i, small_document(i)) for i in range(start, min(records, start + 1000))]
            )


async def worker_drain(
    redis: Redis, db: Any, records: int, prefix: str, **settings: Any
) -> tuple[float, list[int]]:
    """Records per second of an in-process worker, and its batch limit sampled as it ran."""
    await backlog(redis, db, records, prefix)
    worker = Worker(
        redis,
        db,
        Settings(prefix=prefix, partitions=PARTITIONS, metrics_address=None, **settings),
    )
    await worker.startup_checks()
    limits: list[int] = []
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        while worker.stats.persisted < records:  # noqa: ASYNC110 - the bench reads a counter
            await anyio.sleep(0.01)
            limits.append(worker.slots.limit.limit)
        elapsed = time.perf_counter() - started
        worker.request_stop()
    return records / elapsed, limits


async def drain_comparison(
    redis: Redis,
    mongo_url: str,
    records: int,
    batch_sizes: list[int],
    concurrencies: list[int],
    tag: str,
) -> dict[str, Any]:
    """Rates (records/s) of every variant against the same MongoDB, and the ratios that count."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, uuidRepresentation="standard")
    try:
        db = client[f"drain_{tag}"]
        await db.command("ping")
        bare = {}
        for size in batch_sizes:
            bare[size] = await bare_loop(db, records, size, f"bare{size}")
        default_rate, limits = await worker_drain(redis, db, records, f"{tag}d")
        fixed = {}
        for n in concurrencies:
            fixed[n], _ = await worker_drain(redis, db, records, f"{tag}f{n}", concurrency=n)
        # The default once more at the end: the server slows as it fills, so the
        # default is judged on the mean of a run before and a run after the sweep.
        default_again, limits_again = await worker_drain(redis, db, records, f"{tag}d2")
        await client.drop_database(f"drain_{tag}")
    finally:
        await client.close()
    best_bare = max(bare.values())
    best_fixed = max(fixed.values())
    default = (default_rate + default_again) / 2
    return {
        "records": records,
        "bare loop rec/s by batch size": bare,
        "best bare batch size": max(bare, key=lambda k: bare[k]),
        "default worker rec/s (before, after the sweep)": [default_rate, default_again],
        "fixed concurrency rec/s": fixed,
        "best fixed concurrency": max(fixed, key=lambda k: fixed[k]),
        "default x best bare": default / best_bare,
        "default x best fixed": default / best_fixed,
        "adaptive limit samples": limits + limits_again,
    }
