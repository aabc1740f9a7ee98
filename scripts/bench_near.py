"""Read latency benchmark: a near-cache hit beside a Redis hit, in the same run.

One reader makes sequential ``get`` calls of documents already cached, against
a private ``redis-server`` (no MongoDB is touched: every read is a hit):

- **ping**: ``PING``, one Redis round trip;
- **redis hit**: ``collection.get`` with the default ``ReadPolicy`` (one
  pipelined ``HMGET`` + ``PTTL``, then BSON decoding);
- **near hit**: ``collection.get`` with ``ReadPolicy(near=NearCache(...))``
  (the document is in the process; no Redis command).

Each is timed per call; the report gives medians and p99 in microseconds.

    python scripts/bench_near.py [--calls 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
from redis.asyncio import Redis

from writebehind import ReadPolicy, WriteBehind
from writebehind.core.script_calls import call_script
from writebehind.embedded.servers import RedisServer
from writebehind.sdk.near import NearCache

DOCS = 100


def document(i: int) -> dict[str, Any]:
    return {"name": f"user-{i}", "balance": i * 3, "tags": ["a", "b", str(i % 7)], "pad": "x" * 800}


async def timed(call: Callable[[int], Awaitable[Any]], calls: int) -> list[float]:
    for i in range(min(500, calls)):  # warm up: connections, the near cache itself
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


async def run(calls: int, rounds: int) -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        mongo: Any = object()  # never used: every read is a hit
        near = NearCache(max_entries=10_000, ttl=3600.0, max_stale=1.0)
        async with WriteBehind(redis=redis, mongo=mongo, prefix="bench", partitions=16) as wb:
            for p in range(16):  # seeded with no floor: the writes below never read MongoDB
                keys = [wb.keys.stream(p), wb.keys.seeded(p)]
                await call_script(redis, wb.scripts.seed, keys, [""])
            plain = wb.collection("users")
            fast = wb.collection("users_near", reads=ReadPolicy(near=near))
            for i in range(DOCS):
                await plain.set(i, document(i))
                await fast.set(i, document(i))
            await fast.get(0)
            with anyio.fail_after(30):
                while not wb.near.servable(near):  # noqa: ASYNC110 (the feed sets no event)
                    await anyio.sleep(0.01)

            async def ping(i: int) -> None:
                await redis.ping()

            async def redis_hit(i: int) -> None:
                await plain.get(i % DOCS)

            async def near_hit(i: int) -> None:
                await fast.get(i % DOCS)
                if i % 100 == 0:
                    await anyio.lowlevel.checkpoint()  # let the feed run, as applications do

            cases = {"ping": ping, "redis hit": redis_hit, "near hit": near_hit}
            results: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(rounds):
                for name, call in cases.items():
                    results[name] += await timed(call, calls)
        await redis.aclose()
    print(f"{calls} calls x {rounds} rounds, {DOCS} documents of ~900 bytes")
    print(f"{'case':<12} {'median us':>10} {'p99 us':>10}")
    for name, samples in results.items():
        median, p99 = summary(samples)
        print(f"{name:<12} {median * 1e6:>10.1f} {p99 * 1e6:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    anyio.run(run, args.calls, args.rounds)


if __name__ == "__main__":
    main()
