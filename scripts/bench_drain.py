"""Drain benchmark: the worker's rate into MongoDB against a bare loop of the same writes.

Both sides write the same records, one per document (so coalescing cannot
flatter the worker), as version-guarded, journaled, unordered ``bulk_write``s,
to the same server, in the same run, into a collection with the same indexes.
The bare loop batches the documents as the worker meets them (by partition),
so both insert in the same key order. The ratio is what counts: the machines
are noisy.

    python scripts/bench_drain.py [--records 20000] [--batch-size 500] [--rounds 3]
                                  [--concurrency 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from typing import Any

import anyio
import bson
from pymongo import AsyncMongoClient
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from writebehind import WriteBehind
from writebehind.core.codec import ChangeRecord
from writebehind.core.keys import KeySpace
from writebehind.core.version import Version
from writebehind.embedded.servers import RedisServer, SecantusServer
from writebehind.observability.logs import configure_logging
from writebehind.sink.guards import PURGE_FIELD, Pending, guarded_write
from writebehind.worker.runner import Worker
from writebehind.worker.settings import WorkerSettings

PARTITIONS = 4


def document(i: int) -> dict[str, Any]:
    return {"name": f"user-{i}", "balance": i * 3, "tags": ["a", "b", str(i % 7)], "n": {"x": i}}


async def bare_loop(db: Any, records: int, batch_size: int) -> float:
    coll = db.get_collection("bare", write_concern=WriteConcern(w=1, j=True))
    await coll.create_index(PURGE_FIELD, expireAfterSeconds=0, sparse=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    grace = dt.timedelta(days=7)
    keys = KeySpace("bench", PARTITIONS)
    pendings = []
    for i in sorted(range(records), key=lambda i: keys.partition_of("drained", i)):
        doc = {"_id": i, **document(i)}
        record = ChangeRecord(f"{i + 1}-0", Version(i + 1, 0), "set", "bare", bson.encode(doc))
        pendings.append(Pending(record, doc))
    started = time.perf_counter()
    for start in range(0, records, batch_size):
        models = [
            guarded_write(p, now=now, tombstone_grace=grace)
            for p in pendings[start : start + batch_size]
        ]
        await coll.bulk_write(models, ordered=False)
    return records / (time.perf_counter() - started)


async def worker_drain(
    redis: Redis, db: Any, records: int, batch_size: int, prefix: str, concurrency: int
) -> float:
    async with WriteBehind(
        redis=redis, mongo=db, prefix=prefix, partitions=PARTITIONS, max_backlog=0
    ) as wb:
        users = wb.collection("drained")
        for start in range(0, records, 1000):
            await users.set_many(
                [(i, document(i)) for i in range(start, min(records, start + 1000))]
            )
    settings = WorkerSettings(
        prefix=prefix,
        partitions=PARTITIONS,
        batch_size=batch_size,
        linger=0,
        concurrency=concurrency,
        metrics_address=None,
    )
    worker = Worker(redis, db, settings)
    await worker.startup_checks()
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        while worker.stats.persisted < records:  # noqa: ASYNC110 - the bench reads a counter
            await anyio.sleep(0.005)
        elapsed = time.perf_counter() - started
        worker.request_stop()
    return records / elapsed


async def main(records: int, batch_size: int, rounds: int, concurrency: int) -> None:
    configure_logging("error")
    with RedisServer() as redis_server, SecantusServer() as mongo_server:
        redis = Redis.from_url(redis_server.url)
        client: AsyncMongoClient[Any] = AsyncMongoClient(
            mongo_server.url, uuidRepresentation="standard"
        )
        ratios = []
        for r in range(rounds):
            db = client[f"bench{r}"]
            # Alternate which side goes first, so a server that slows as it
            # fills does not favour either.
            if r % 2 == 0:
                bare = await bare_loop(db, records, batch_size)
            drained = await worker_drain(redis, db, records, batch_size, f"bench{r}", concurrency)
            if r % 2 == 1:
                bare = await bare_loop(db, records, batch_size)
            ratios.append(drained / bare)
            print(
                f"round {r + 1}: bare {bare:,.0f} rec/s, worker {drained:,.0f} rec/s, "
                f"ratio {drained / bare:.2f}"
            )
        print(f"median ratio worker/bare: {statistics.median(ratios):.2f} over {rounds} rounds")
        await redis.aclose()
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="worker batches in flight; 1 matches the bare loop's one-at-a-time writes",
    )
    args = parser.parse_args()
    anyio.run(main, args.records, args.batch_size, args.rounds, args.concurrency)
