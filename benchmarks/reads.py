"""Comparison 8: the SDK's reads against the least a read could be.

One call of each kind per step, shuffled, after a warm-up (``writes.interleaved``);
ratios are medians of per-step paired ratios, as in comparison 1:

- a Redis hit, ``get`` of a cached document (default policy), against a bare
  ``HGET`` of the body field of the same cache entry;
- a near-cache hit (``ReadPolicy(near=NearCache())``) against the Redis hit;
- a miss with fill, ``get`` of a document that is in MongoDB and not in Redis
  (a new id every call), against a bare ``find_one`` of another such document.
"""

from __future__ import annotations

import random
from typing import Any

from redis.asyncio import Redis

from benchmarks.common import document, median, percentile
from benchmarks.writes import PARTITIONS, interleaved, paired
from writebehind import NearCache, ReadPolicy, WriteBehind

HOT = 100  # documents read by the hit kinds, in turn
WARM_UP = 100  # interleaved() warms up with ids -1 .. -100

BASELINES = {
    "sdk get, redis hit": "bare hget",
    "sdk get, near hit": "sdk get, redis hit",
    "sdk get, miss + fill": "bare find_one",
}


async def read_latency(redis: Redis, db: Any, steps: int, seed: int) -> dict[str, Any]:
    """Comparison 8. Times in µs; each subject's ratio to its baseline, and to ``HGET``."""
    cold = range(-WARM_UP, steps)
    await db["c8_cold"].insert_many([{"_id": i, **document(i)} for i in cold])
    await db["c8_bare"].insert_many([{"_id": i, **document(i)} for i in cold])
    bare = db["c8_bare"]
    async with WriteBehind(redis=redis, mongo=db, prefix="c8", partitions=PARTITIONS) as wb:
        plain = wb.collection("c8_hot")
        near = wb.collection("c8_hot", reads=ReadPolicy(near=NearCache()))
        misses = wb.collection("c8_cold")
        for i in range(HOT):
            await plain.set(i, document(i))
        entries = [
            wb.keys.cache(wb.keys.partition_of("c8_hot", i), "c8_hot", i) for i in range(HOT)
        ]
        samples = await interleaved(
            {
                "bare hget": lambda i: redis.hget(entries[i % HOT], "d"),
                "sdk get, redis hit": lambda i: plain.get(i % HOT),
                "sdk get, near hit": lambda i: near.get(i % HOT),
                "bare find_one": lambda i: bare.find_one({"_id": i}),
                "sdk get, miss + fill": lambda i: misses.get(i),
            },
            steps,
            random.Random(seed),
        )
        filled = await redis.exists(
            *[wb.keys.cache(wb.keys.partition_of("c8_cold", i), "c8_cold", i) for i in cold]
        )
    to_hget = paired(samples, "bare hget")
    kinds: dict[str, dict[str, Any]] = {}
    for name, times in samples.items():
        kinds[name] = {
            "p50 us": median(times) * 1e6,
            "p99 us": percentile(times, 0.99) * 1e6,
            "x bare hget (paired median)": to_hget[name],
        }
        if name in BASELINES:
            base = BASELINES[name]
            kinds[name]["baseline"] = base
            kinds[name]["x baseline (paired median)"] = paired(samples, base)[name]
            kinds[name]["p99 x baseline p99"] = percentile(times, 0.99) / percentile(
                samples[base], 0.99
            )
    return {
        "steps": steps,
        "kinds": kinds,
        "cold documents filled": filled,
        "cold documents read": len(cold),
        "samples_us": {n: [round(t * 1e6, 1) for t in ts] for n, ts in samples.items()},
    }
