"""Comparisons 1 and 2: the SDK's writes against the least a write could be.

1. ``set`` latency against (a) a bare Lua script of ``XADD`` + ``SET`` (the
   minimal write-behind write) and (b) a direct journaled upsert to MongoDB.
2. ``set_many`` throughput against the same bare script, pipelined.

Calls are interleaved step by step in a shuffled order, so load from elsewhere
hits every kind alike; ratios are medians of per-step paired ratios.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import bson
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from benchmarks.common import document, median, percentile
from writebehind import WriteBehind

MINIMAL = """
redis.call('XADD', KEYS[1], '*', 'op', ARGV[1], 'c', ARGV[2], 'd', ARGV[3], 'k', KEYS[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
"""
PARTITIONS = 16


async def interleaved(
    calls: dict[str, Callable[[int], Awaitable[Any]]], steps: int, rng: random.Random
) -> dict[str, list[float]]:
    """Seconds per call of each kind, one call of each per step, shuffled; after a warm-up."""
    names = list(calls)
    for i in range(min(100, steps)):
        for name in names:
            await calls[name](-1 - i)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(steps):
        rng.shuffle(names)
        for name in names:
            started = time.perf_counter()
            await calls[name](i)
            out[name].append(time.perf_counter() - started)
    return out


def paired(samples: dict[str, list[float]], baseline: str) -> dict[str, float]:
    base = samples[baseline]
    return {
        name: median([t / b for t, b in zip(times, base, strict=True)])
        for name, times in samples.items()
    }


async def set_latency(redis: Redis, db: Any, steps: int, seed: int) -> dict[str, Any]:
    """Comparison 1. Times in µs; ratios to the minimal script and to the MongoDB upsert."""
    minimal = redis.register_script(MINIMAL)
    journaled = db.get_collection("direct", write_concern=WriteConcern(w=1, j=True))
    async with WriteBehind(redis=redis, mongo=db, prefix="c1", partitions=PARTITIONS) as wb:
        users = wb.collection("users")
        encoded = {i: bson.encode({"_id": i, **document(i)}) for i in range(-200, steps)}

        def bare(i: int) -> Any:
            p = wb.keys.partition_of("users", i)
            return minimal(keys=[f"{{m{p}}}:s", f"{{m{p}}}:c:{i}"], args=["set", "u", encoded[i]])

        samples = await interleaved(
            {
                "ping": lambda i: redis.ping(),
                "minimal script": bare,
                "sdk set": lambda i: users.set(i, document(i)),
                "mongodb upsert (j)": lambda i: journaled.replace_one(
                    {"_id": i}, document(i), upsert=True
                ),
            },
            steps,
            random.Random(seed),
        )
    to_minimal = paired(samples, "minimal script")
    to_upsert = paired(samples, "mongodb upsert (j)")
    kinds = {
        name: {
            "p50 us": median(times) * 1e6,
            "p99 us": percentile(times, 0.99) * 1e6,
            "x minimal script (paired median)": to_minimal[name],
            "x mongodb upsert (paired median)": to_upsert[name],
            "p99 x minimal script p99": percentile(times, 0.99)
            / percentile(samples["minimal script"], 0.99),
        }
        for name, times in samples.items()
    }
    return {"steps": steps, "kinds": kinds, "samples_us": _rounded(samples)}


async def set_many_throughput(
    redis: Redis, db: Any, steps: int, size: int, seed: int
) -> dict[str, Any]:
    """Comparison 2: ``set_many`` of ``size`` documents against the minimal script pipelined."""
    sha = await redis.script_load(MINIMAL)  # EVALSHA direct: no SCRIPT EXISTS per pipeline
    async with WriteBehind(redis=redis, mongo=db, prefix="c2", partitions=PARTITIONS) as wb:
        users = wb.collection("users")

        async def sdk(i: int) -> None:
            await users.set_many([(i * size + j, document(j)) for j in range(size)])

        async def bare(i: int) -> None:
            pipe = redis.pipeline(transaction=False)
            for j in range(size):
                doc_id = i * size + j
                p = wb.keys.partition_of("users", doc_id)
                body = bson.encode({"_id": doc_id, **document(j)})
                pipe.evalsha(sha, 2, f"{{n{p}}}:s", f"{{n{p}}}:c:{doc_id}", "set", "u", body)
            await pipe.execute()

        samples = await interleaved(
            {"bare pipelined script": bare, "sdk set_many": sdk}, steps, random.Random(seed)
        )
    ratio = paired(
        {"base": samples["sdk set_many"], "x": samples["bare pipelined script"]}, "base"
    )["x"]
    return {
        "steps": steps,
        "documents per call": size,
        "sdk set_many docs/s": size / median(samples["sdk set_many"]),
        "bare pipelined docs/s": size / median(samples["bare pipelined script"]),
        "throughput x bare (paired median)": ratio,
    }


def _rounded(samples: dict[str, list[float]]) -> dict[str, list[float]]:
    return {name: [round(t * 1e6, 1) for t in times] for name, times in samples.items()}
