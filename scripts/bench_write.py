"""Write latency benchmark: an SDK write against a bare Redis round trip, in the same run.

The promise is that a write returns in about one Redis round trip. One writer
makes sequential calls against a private ``redis-server`` (AOF, ``appendfsync
everysec``, as production should run it) with one replica attached:

- **ping**: ``PING``, the round trip itself;
- **hset**: a bare ``HSET`` of the same encoded document: one write, no script;
- **write script alone**: the SDK's write script with ready arguments (the
  server's share: backlog check, ``XADD``, cache entry);
- **sdk set**: ``collection.set`` (checks and BSON encoding, then that script);
- **sdk set, wait_replicas=1**: the same, followed by ``WAIT 1`` in one pipeline.

Each is timed per call; the report gives medians and p99 as ratios to ping's.

    python scripts/bench_write.py [--calls 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import bson
from redis.asyncio import Redis

from writebehind import WriteBehind
from writebehind.embedded.servers import RedisServer

PARTITIONS = 16


def document(i: int) -> dict[str, Any]:
    return {"name": f"user-{i}", "balance": i * 3, "tags": ["a", "b", str(i % 7)], "pad": "x" * 800}


async def timed(call: Callable[[int], Awaitable[Any]], calls: int) -> list[float]:
    for i in range(min(200, calls)):  # warm up: connections, script cache
        await call(i)
    out = []
    for i in range(calls):
        started = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - started)
    return out


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


async def wait_replica_online(primary: Redis) -> None:
    with anyio.fail_after(30):
        while True:
            info = await primary.info("replication")
            if int(info.get("connected_slaves", 0)) >= 1 and "online" in str(info.get("slave0")):
                return
            await anyio.sleep(0.05)


async def one_round(primary_url: str, calls: int) -> dict[str, tuple[float, float]]:
    redis = Redis.from_url(primary_url)
    # The SDK needs a MongoDB handle but never touches it on a write.
    mongo: Any = object()
    plain = WriteBehind(redis=redis, mongo=mongo, prefix="bench", partitions=PARTITIONS)
    waiting = WriteBehind(
        redis=redis, mongo=mongo, prefix="bench", partitions=PARTITIONS, wait_replicas=1
    )
    users, replicated = plain.collection("users"), waiting.collection("replicated")
    encoded = [bson.encode({"_id": i, **document(i)}) for i in range(calls + 200)]
    keys = plain.keys

    def script(i: int) -> Any:
        # The server's share: the same script and arguments, nothing checked or encoded here.
        p = keys.partition_of("bare", i)
        return plain.scripts.write(
            keys=[keys.stream(p), keys.cache(p, "bare", i)],
            args=["set", "bare", encoded[i], "", plain.group, plain.max_backlog, f"n{i}"],
        )

    try:
        results = {
            "ping": summary(await timed(lambda i: redis.ping(), calls)),
            "hset": summary(await timed(lambda i: redis.hset(f"bare:{i}", "d", encoded[i]), calls)),
            "write script alone": summary(await timed(lambda i: script(i), calls)),
            "sdk set": summary(await timed(lambda i: users.set(i, document(i)), calls)),
            "sdk set, wait_replicas=1": summary(
                await timed(lambda i: replicated.set(i, document(i)), calls)
            ),
        }
        await redis.flushall()
        return results
    finally:
        await redis.aclose()


async def main(calls: int, rounds: int) -> None:
    primary = RedisServer("--appendfsync", "everysec", appendonly=True)
    with primary, RedisServer("--replicaof", "127.0.0.1", str(primary.port)):
        client = Redis.from_url(primary.url)
        await wait_replica_online(client)
        await client.aclose()
        per_round = [await one_round(primary.url, calls) for _ in range(rounds)]
    print(f"{calls} sequential calls per measurement, {rounds} rounds")
    print(f"{'':28} {'median / ping':>14} {'p99 / ping':>11} {'median':>9}")
    for name in per_round[0]:
        medians = [r[name][0] / r["ping"][0] for r in per_round]
        p99s = [r[name][1] / r["ping"][1] for r in per_round]
        raw = statistics.median(r[name][0] for r in per_round) * 1e6
        print(
            f"{name:28} {statistics.median(medians):14.2f} {statistics.median(p99s):11.2f} "
            f"{raw:7.0f}µs"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    anyio.run(main, args.calls, args.rounds)
