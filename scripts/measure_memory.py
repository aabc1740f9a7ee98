"""Redis memory per backlog record and per cache entry, measured on a private redis-server.

For each document size, writes N documents through the SDK (no worker runs, so
every write is backlog: a stream record plus a dirty cache entry), then reads
Redis's own accounting: ``MEMORY USAGE <stream> SAMPLES 0`` (the whole stream)
divided by N, ``MEMORY USAGE`` of cache entries (the mean over a sample), and
the growth of ``used_memory`` per write (everything: keys, dict slots).
docs/scaling.md reports its output.

    python scripts/measure_memory.py [--records 20000] [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

import anyio
import bson
from redis.asyncio import Redis

from writebehind import WriteBehind
from writebehind.embedded.servers import RedisServer, SecantusServer

PARTITIONS = 16


def document(size: int, i: int) -> dict[str, Any]:
    """About ``size`` bytes of BSON: a few typical fields and a text filler."""
    base = {"name": f"user {i}", "age": i % 90, "active": True}
    return {**base, "bio": "x" * max(0, size - 60)}


async def measure(redis_url: str, mongo_url: str, records: int, size: int) -> dict[str, Any]:
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    before = int((await redis.info("memory"))["used_memory"])
    async with WriteBehind(
        redis=redis, mongo_url=mongo_url, database="measure", partitions=PARTITIONS
    ) as wb:
        users = wb.collection("users")
        async with anyio.create_task_group() as tg:
            limiter = anyio.CapacityLimiter(64)

            async def one(i: int) -> None:
                async with limiter:
                    await users.set(f"user-{i:08d}", document(size, i))

            for i in range(records):
                tg.start_soon(one, i)
        after = int((await redis.info("memory"))["used_memory"])
        streams = [
            int(await redis.memory_usage(wb.keys.stream(p), samples=0) or 0)
            for p in range(PARTITIONS)
        ]
        sample = random.Random(7).sample(range(records), min(500, records))
        entries = []
        for i in sample:
            key = wb.keys.cache(
                wb.keys.partition_of("users", f"user-{i:08d}"), "users", f"user-{i:08d}"
            )
            entries.append(int(await redis.memory_usage(key, samples=0) or 0))
        bson_size = len(bson.encode({"_id": "user-00000000", **document(size, 0)}))
    await redis.aclose()
    return {
        "doc_bson_bytes": bson_size,
        "records": records,
        "stream_bytes_per_record": round(sum(streams) / records),
        "cache_entry_bytes": round(sum(entries) / len(entries)),
        "used_memory_bytes_per_write": round((after - before) / records),
    }


async def main(records: int, sizes: list[int]) -> None:
    with RedisServer() as redis_server, SecantusServer() as mongo:
        for size in sizes:
            row = await measure(redis_server.url, mongo.url, records, size)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--sizes", default="100,1000,10000")
    args = parser.parse_args()
    anyio.run(main, args.records, [int(s) for s in args.sizes.split(",")])
