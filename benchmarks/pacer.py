"""Paced ``set``s in a process of their own (comparison 6), so the writers take no
time from the worker being measured.

    python -m benchmarks.pacer REDIS_URL PREFIX RATE SECONDS

Prints one JSON object: ``returned`` maps each document id to the
``time.monotonic()`` at which its ``set`` returned (the same clock in every
process of the host), and ``achieved`` is the rate reached.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import anyio
from redis.asyncio import Redis

from benchmarks.common import mark_seeded, small_document
from writebehind import WriteBehind

WRITERS = 4  # paced together: one writer alone cannot reach every rate


async def pace(url: str, prefix: str, rate: float, seconds: float) -> dict[str, Any]:
    redis = Redis.from_url(url)
    mongo: Any = object()  # a write of a seeded partition never touches MongoDB
    total = int(rate * seconds)
    returned: dict[int, float] = {}
    async with WriteBehind(redis=redis, mongo=mongo, prefix=prefix, partitions=16) as wb:
        await mark_seeded(wb)
        users = wb.collection("lag")
        await users.set(-1, {})  # connections and scripts ready before the clock starts
        start = time.monotonic()

        async def writer(k: int) -> None:
            for i in range(k, total, WRITERS):
                wait = start + i / rate - time.monotonic()
                if wait > 0:
                    await anyio.sleep(wait)
                await users.set(i, small_document(i))
                returned[i] = time.monotonic()

        async with anyio.create_task_group() as tg:
            for k in range(WRITERS):
                tg.start_soon(writer, k)
        achieved = total / (time.monotonic() - start)
    await redis.aclose()
    return {"start": start, "achieved": achieved, "returned": returned}


if __name__ == "__main__":
    url, prefix, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(anyio.run(pace, url, prefix, rate, seconds)))
