"""Comparison 7: a worker process's memory while it drains a large backlog.

The backlog (one record per document) is written with ``set_many`` while no
worker runs. Then one worker process (``benchmarks/ceiling_worker.py``) starts,
runs its start-up checks and says ``ready``; its resident set size then is
the start. Told to go, it drains while this process samples its RSS every
50 ms, until no record is pending or undelivered. Growth is the peak sampled
RSS over the start; the growth after the first tenth of the drain time
(buffers and lazily imported code in use by then) tells a working set from a
leak. With ``sink="none"`` MongoDB is taken out of the path (the
sink answers "persisted" at once, as in comparison 4), so a million records
drain in a minute or two instead of the ~15 minutes SecantusDB would take;
with ``sink="mongodb"`` the records go to SecantusDB (a smaller backlog).

RSS comes from ``psutil`` when it is installed, else from Linux's
``/proc/<pid>/status`` (``VmRSS``); the kernel's own peak (``VmHWM``, which
includes start-up) is read from there too when it exists.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import anyio
from redis.asyncio import Redis

from benchmarks.ceiling_worker import reap, wait_ready
from benchmarks.common import small_document
from benchmarks.flow import PARTITIONS, pending_records
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace

MB = 1024 * 1024
SAMPLE_EVERY = 0.05  # seconds


def status_bytes(pid: int, field: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in bytes; None if absent."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def rss_reader(pid: int) -> Any:
    """A function returning the process's RSS in bytes: psutil's if installed, else /proc's."""
    try:
        import psutil  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return lambda: status_bytes(pid, "VmRSS") or 0
    process = psutil.Process(pid)
    return lambda: int(process.memory_info().rss)


async def fill(redis: Redis, db: Any, prefix: str, records: int) -> float:
    """``records`` new documents through ``set_many`` (1,000 a call); seconds taken."""
    started = time.perf_counter()
    async with WriteBehind(
        redis=redis, mongo=db, prefix=prefix, partitions=PARTITIONS, max_backlog=0
    ) as wb:
        users = wb.collection("memory")
        for start in range(0, records, 1000):
            await users.set_many(
                [(i, small_document(i)) for i in range(start, min(records, start + 1000))]
            )
    return time.perf_counter() - started


async def worker_memory(
    redis: Redis, db: Any, redis_url: str, mongo_url: str, records: int, sink: str
) -> dict[str, Any]:
    """Comparison 7 for one backlog of ``records``; sizes in MB (2**20 bytes), times in s."""
    prefix = f"c7{sink}"
    filled = await fill(redis, db, prefix, records)
    keys = KeySpace(prefix, PARTITIONS)
    streams = keys.streams()
    command = [sys.executable, "-m", "benchmarks.ceiling_worker", redis_url, mongo_url, prefix]
    proc = await anyio.open_process([*command, sink])
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        await wait_ready([proc], 60)
        rss = rss_reader(proc.pid)
        await anyio.sleep(0.3)  # settled after start-up
        start = rss()
        samples: list[tuple[float, int]] = []
        started = time.perf_counter()
        await proc.stdin.send(b"go\n")
        checked = 0.0
        while True:
            now = time.perf_counter() - started
            samples.append((now, rss()))
            if now - checked >= 0.2:
                checked = now
                if await pending_records(redis, streams) == 0:
                    break
            await anyio.sleep(SAMPLE_EVERY)
        drained = time.perf_counter() - started
        end = rss()
        hwm = status_bytes(proc.pid, "VmHWM")
        await proc.stdin.send(b"stop\n")
    finally:
        await reap([proc])
    peak = max(value for _, value in samples)
    settled = next(v for t, v in samples if t >= drained / 10)
    step = max(1, len(samples) // 500)
    return {
        "records": records,
        "sink": "SecantusDB" if sink == "mongodb" else "none (MongoDB out of the path)",
        "fill seconds": filled,
        "drain seconds": drained,
        "records/s": records / drained,
        "rss start MB": start / MB,
        "rss peak MB": peak / MB,
        "rss end MB": end / MB,
        "VmHWM MB (start-up included)": None if hwm is None else hwm / MB,
        "growth (peak / start - 1)": peak / start - 1,
        "rss at a tenth of the drain MB": settled / MB,
        "growth over the last nine tenths": peak / settled - 1,
        "rss over time [s, MB]": [[round(t, 2), round(v / MB, 2)] for t, v in samples[::step]],
    }
