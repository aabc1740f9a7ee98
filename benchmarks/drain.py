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
import statistics
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


async def backlog(redis: Redis, db: Any, records: int, prefix: str, name: str) -> None:
    """``records`` writes through the SDK, not timed: the backlog a worker drains."""
    async with WriteBehind(
        redis=redis, mongo=db, prefix=prefix, partitions=PARTITIONS, max_backlog=0
    ) as wb:
        users = wb.collection(name)
        for start in range(0, records, 1000):
            await users.set_many(
                [(i, small_document(i)) for i in range(start, min(records, start + 1000))]
            )


async def worker_drain(
    redis: Redis, db: Any, records: int, name: str, **settings: Any
) -> tuple[float, list[int]]:
    """Records per second of an in-process worker, and its batch limit sampled every 10 ms."""
    await backlog(redis, db, records, name, name)
    worker = Worker(
        redis, db, Settings(prefix=name, partitions=PARTITIONS, metrics_address=None, **settings)
    )
    await worker.startup_checks()
    limits: list[int] = []
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        while worker.stats.persisted < records:
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
    rounds: int,
    tag: str,
) -> dict[str, Any]:
    """Rates (records/s, median over rounds) of every variant against the same MongoDB.

    Each round runs every variant once, in an order rotated from round to
    round (the server slows as it fills, and the machine's load moves), each
    into a new collection (inserts, never updates of an earlier variant's
    documents).
    """
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, uuidRepresentation="standard")
    variants = [("bare", n) for n in batch_sizes] + [("fixed", n) for n in concurrencies]
    variants.append(("default", 0))
    rates: dict[tuple[str, int], list[float]] = {v: [] for v in variants}
    limits: list[int] = []
    try:
        db = client[f"drain_{tag}"]
        await db.command("ping")
        for r in range(rounds):
            shift = r * len(variants) // max(1, rounds)
            for kind, n in variants[shift:] + variants[:shift]:
                name = f"{tag}_{kind}{n}_r{r}"
                if kind == "bare":
                    rates[kind, n].append(await bare_loop(db, records, n, name))
                elif kind == "fixed":
                    rate, _ = await worker_drain(redis, db, records, name, concurrency=n)
                    rates[kind, n].append(rate)
                else:
                    rate, seen = await worker_drain(redis, db, records, name)
                    rates[kind, n].append(rate)
                    limits += seen
        await client.drop_database(f"drain_{tag}")
    finally:
        await client.close()
    bare = {n: statistics.median(rates["bare", n]) for n in batch_sizes}
    fixed = {n: statistics.median(rates["fixed", n]) for n in concurrencies}
    default = statistics.median(rates["default", 0])
    return {
        "records": records,
        "rounds": rounds,
        "every rate": {f"{k} {n}": v for (k, n), v in rates.items()},
        "bare loop rec/s by batch size": bare,
        "best bare batch size": max(bare, key=lambda k: bare[k]),
        "fixed concurrency rec/s": fixed,
        "best fixed concurrency": max(fixed, key=lambda k: fixed[k]),
        "default worker rec/s": default,
        "default x best bare": default / max(bare.values()),
        "default x best fixed": default / max(fixed.values()),
        "adaptive limit samples": limits,
    }
