"""Comparisons 5 and 6: coalescing under Zipfian updates, and lag at half capacity.

5. Zipfian updates (constant 0.99 over 10,000 keys) written faster than the
   worker drains them (MongoDB the bottleneck): MongoDB operations per
   acknowledged write. The baseline is 1.0: a write-through cache sends one
   operation per write.
6. Paced single ``set``s at half the measured drain rate, from another process
   (``benchmarks/pacer.py``): the lag from ``set`` returning to its version
   being in MongoDB (the worker's ``bulk_write`` returning), per write, p50 and
   p99, and over time. Both processes read ``time.monotonic()``, one clock on
   the host.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

import anyio
from redis.asyncio import Redis

from benchmarks.ceiling_worker import reap, tell, wait_ready
from benchmarks.common import median, percentile, small_document
from benchmarks.distributions import Zipf
from writebehind import WriteBehind
from writebehind.settings import Settings
from writebehind.worker.runner import Worker

PARTITIONS = 16


def _worker(redis: Redis, db: Any, prefix: str) -> Worker:
    return Worker(redis, db, Settings(prefix=prefix, partitions=PARTITIONS, metrics_address=None))


async def coalescing(redis: Redis, db: Any, writes: int, keys: int = 10_000) -> dict[str, Any]:
    """Comparison 5 (operations counted by the worker: records persisted minus superseded)."""
    zipf = Zipf(keys, 0.99, random.Random(7))
    worker = _worker(redis, db, "c5")
    await worker.startup_checks()
    async with (
        WriteBehind(redis=redis, mongo=db, prefix="c5", partitions=PARTITIONS, max_backlog=0) as wb,
        anyio.create_task_group() as tg,
    ):
        users = wb.collection("zipf")
        tg.start_soon(worker.run)
        started = time.perf_counter()
        distinct: set[int] = set()
        for start in range(0, writes, 100):
            ids = [zipf() for _ in range(100)]
            distinct.update(ids)
            await users.set_many([(k, small_document(start + j)) for j, k in enumerate(ids)])
        written = time.perf_counter() - started
        while worker.stats.persisted < writes:  # noqa: ASYNC110 - the bench reads a counter
            await anyio.sleep(0.01)
        drained = time.perf_counter() - started
        worker.request_stop()
    operations = worker.stats.persisted - worker.stats.coalesced
    return {
        "writes": writes,
        "keys": keys,
        "mongodb operations": operations,
        "operations per write": operations / writes,
        "distinct keys written": len(distinct),
        "floor (distinct keys / writes)": len(distinct) / writes,
        "write-through operations per write": 1.0,
        "seconds writing, seconds until drained": [written, drained],
    }


async def lag(redis: Redis, db: Any, redis_url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Comparison 6: paced writes at ``rate`` per second for ``seconds``, from another process."""
    worker = _worker(redis, db, "c6")
    await worker.startup_checks()
    persisted: dict[Any, float] = {}
    write = worker.sink.write

    async def timed_write(name: str, pendings: Any, fence: Any = None) -> Any:
        outcome = await write(name, pendings, fence)
        now = time.monotonic()
        for p in pendings:
            persisted.setdefault(p.doc_id, now)
        return outcome

    worker.sink.write = timed_write  # type: ignore[method-assign]
    command = [sys.executable, "-m", "benchmarks.pacer", redis_url, "c6", str(rate), str(seconds)]
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        done = await anyio.run_process(command)
        paced = json.loads(done.stdout)
        returned = {int(k): v for k, v in paced["returned"].items()}
        while len(persisted.keys() & returned.keys()) < len(returned):  # noqa: ASYNC110
            await anyio.sleep(0.01)
        worker.request_stop()
    ids = sorted(returned)
    lags = [persisted[i] - returned[i] for i in ids]
    return {
        "target rate/s": rate,
        "achieved rate/s": paced["achieved"],
        "writes": len(ids),
        "lag p50 ms": median(lags) * 1e3,
        "lag p99 ms": percentile(lags, 0.99) * 1e3,
        "lag over time": [
            [round(returned[i] - paced["start"], 3), round(lag * 1e3, 2)]
            for i, lag in zip(ids, lags, strict=True)
        ],
    }


async def ceiling_processes(
    redis: Redis, db: Any, redis_url: str, mongo_url: str, records: int, processes: int
) -> float:
    """Comparison 4 with ``processes`` worker processes sharing the consumer group: records/s.

    Timed from the moment every process, its checks done, is told to start,
    until no partition has a record pending or undelivered.
    """
    prefix = f"c4p{processes}"
    async with WriteBehind(
        redis=redis, mongo=db, prefix=prefix, partitions=PARTITIONS, max_backlog=0
    ) as wb:
        users = wb.collection("ceiling")
        for start in range(0, records, 1000):
            await users.set_many(
                [(i, small_document(i)) for i in range(start, min(records, start + 1000))]
            )
        keys = wb.keys
    command = [sys.executable, "-m", "benchmarks.ceiling_worker", redis_url, mongo_url, prefix]
    procs = [await anyio.open_process(command) for _ in range(processes)]
    try:
        await wait_ready(procs, 60)
        began = time.perf_counter()
        await tell(procs, b"go")
        while await pending_records(redis, [keys.stream(p) for p in range(PARTITIONS)]) > 0:  # noqa: ASYNC110
            await anyio.sleep(0.02)
        elapsed = time.perf_counter() - began
    finally:
        await reap(procs)
    return records / elapsed


async def pending_records(redis: Redis, streams: list[str]) -> int:
    """Records pending or undelivered in the worker's group, over every stream."""
    total = 0
    for stream in streams:
        for group in await redis.xinfo_groups(stream):
            if group["name"] == b"writebehind":
                total += int(group["pending"]) + int(group.get("lag") or 0)
    return total
