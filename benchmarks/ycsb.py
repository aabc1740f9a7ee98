"""Comparison 9: YCSB core workloads A, B, C, D and F on four systems.

The systems share one MongoDB collection of ``records`` records (10 fields x
100 bytes, loaded with ``insert_many``) and have caches of their own (two SDK
prefixes, cache-aside's keys). Workload D's inserts of each system take keys
of their own (from ``records + i * INSERT_RANGE``), and its "latest" requests
read that system's newest records, then the loaded ones, as if it ran alone.
Before the runs every cache is warmed with the ``warm`` most requested records
(the SDK's ``warm``, or one ``find`` and pipelined ``SET``s for cache-aside,
500 records at a time: 10,000 of 100,000 records draw 80% of Zipfian
requests), so the short windows measure a warm cache rather
than only its misses; warming every record would take SecantusDB minutes. The
near cache fills itself from Redis as it is read.

For every workload, in YCSB's order (D last: its inserts grow the
collection), ``rounds`` rounds run every system in turn, the order rotated
from round to round (the machine's load moves; a stall hits one round):
``concurrency`` tasks in this process issue operations back to back for
``warm_up`` seconds (not counted), then for ``seconds``; an operation counts
when it starts and ends inside the timed window (one that raised is counted
apart, by exception). Reported per (workload, system): the median of the
rounds' operations per second, p50/p99 per operation in µs over every round;
writebehind's ratio to each other system is the median of per-round ratios.

The write-behind and write-through systems each have a worker process of
their own (``writebehind worker``, default settings), running only during
their system's windows (``SIGSTOP`` otherwise). After such a window, before
the worker is stopped, the worker persists what the window left (untimed,
reported as the backlog and the seconds it took): each window starts with
nothing queued, and no system's backlog takes MongoDB's time from another's
run. For those two, the SDK's read counters of the window are reported too
(where reads were answered: near, redis, mongodb, degraded; lease waits).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from redis.asyncio import Redis

from benchmarks.common import median, percentile
from benchmarks.distributions import (
    WORKLOADS,
    InsertCounter,
    Latest,
    Records,
    ScrambledZipf,
    Workload,
)
from benchmarks.flow import PARTITIONS, pending_records
from benchmarks.ycsb_systems import CacheAside, MongoOnly, Sdk, System
from writebehind import NearCache, ReadPolicy, WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.sdk.metrics import SDK_NEAR_READS, SDK_READS

SYSTEMS = ("writebehind + near cache", "write-through", "cache-aside", "mongodb alone")
PREFIXES = {"writebehind + near cache": "y9a", "write-through": "y9b"}
ZIPF = 0.99
RUN_ORDER = "ABCFD"  # YCSB's: D last, its inserts grow the collections
WARM_BATCH = 500
COLLECTION = "ycsb"
INSERT_RANGE = 10_000_000  # keys apart between the systems' inserts
QUANTILES = 200  # points kept of each read latency distribution, for the CDF plot


async def load(db: Any, records: int, rng: random.Random) -> float:
    """The records into the collection; seconds taken."""
    started = time.perf_counter()
    make = Records(rng)
    for start in range(0, records, 1000):
        await db[COLLECTION].insert_many(
            [{"_id": i, **make()} for i in range(start, min(records, start + 1000))]
        )
    return time.perf_counter() - started


@asynccontextmanager
async def workers(redis_url: str, mongo_url: str, database: str) -> AsyncIterator[dict[str, int]]:
    """A ``writebehind worker`` process per SDK system, started, then stopped: ``{system: pid}``.

    Each logs to a file of its own, read for its ``worker_started`` line.
    """
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="wb-ycsb-") as logs:
        try:
            for system, prefix in PREFIXES.items():
                command = [
                    sys.executable, "-c", "from writebehind.cli import main; main()", "worker",
                    "--redis-url", redis_url, "--mongo-url", mongo_url, "--database", database,
                    "--prefix", prefix, "--partitions", str(PARTITIONS),
                    "--metrics-address", "off", "--log-level", "info", "--log-format", "json",
                ]  # fmt: skip
                procs[system] = _spawn(command, Path(logs) / prefix)
            for system, prefix in PREFIXES.items():
                await _started(Path(logs) / prefix, procs[system])
                os.kill(procs[system].pid, signal.SIGSTOP)
            yield {system: proc.pid for system, proc in procs.items()}
        finally:
            _stop(list(procs.values()))


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Resume, then ``SIGTERM`` each worker (it drains and exits); ``SIGKILL`` after 40 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _started(log: Path, proc: subprocess.Popen[bytes]) -> None:
    """Wait (up to 60 s) for the worker's ``worker_started`` log line."""
    with anyio.fail_after(60):
        while proc.poll() is None:
            if "worker_started" in _read(log):
                return
            await anyio.sleep(0.1)
    raise RuntimeError(f"a worker exited with status {proc.returncode}: {_read(log)}")


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


async def run_window(
    system: System,
    workload: Workload,
    keys: Callable[[], int],
    counter: InsertCounter,
    make: Records,
    rng: random.Random,
    concurrency: int,
    warm_up: float,
    seconds: float,
) -> dict[str, Any]:
    """One (workload, system) window: operations/s, latencies per operation, errors."""
    choose = workload.chooser(rng)
    calls: dict[str, Callable[[int], Awaitable[Any]]] = {
        "read": system.read,
        "update": lambda k: system.update(k, make()),
        "insert": lambda k: system.insert(k, make()),
        "rmw": lambda k: system.rmw(k, make()),
    }
    times: dict[str, list[float]] = {op: [] for op in workload.mix if workload.mix[op] > 0}
    errors: dict[str, int] = {}
    begin = time.perf_counter() + warm_up
    end = begin + seconds

    async def client() -> None:
        while (started := time.perf_counter()) < end:
            op = choose()
            key = counter.next_key() if op == "insert" else keys()
            try:
                await calls[op](key)
            except Exception as exc:  # counted and shown: a benchmark keeps going
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if op == "insert":
                counter.acknowledge(key)
            done = time.perf_counter()
            if started >= begin and done <= end:
                times[op].append(done - started)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(client)
    return {
        "ops/s": sum(len(t) for t in times.values()) / seconds,
        "times": times,
        "errors": errors,
    }


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One system's rounds of a workload: the median rate, latencies of every round pooled.

    Each round is ``run_window``'s answer, with whatever the caller added
    (``backlog after window``, ``seconds to drain it``, ``read outcomes``):
    backlogs are listed by round, drain seconds and read outcomes summed.
    """
    times: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    outcomes: dict[str, float] = {}
    for r in rounds:
        for op, t in r["times"].items():
            times.setdefault(op, []).extend(t)
        for name, n in r["errors"].items():
            errors[name] = errors.get(name, 0) + n
        for name, n in r.get("read outcomes", {}).items():
            outcomes[name] = outcomes.get(name, 0) + n
    out: dict[str, Any] = {
        "ops/s": median([r["ops/s"] for r in rounds]),
        "ops/s by round": [r["ops/s"] for r in rounds],
        "operations": {
            op: {
                "count": len(t),
                "p50 us": median(t) * 1e6 if t else None,
                "p99 us": percentile(t, 0.99) * 1e6 if t else None,
            }
            for op, t in times.items()
        },
        "errors": errors,
        "read quantiles us": _quantiles(times.get("read", [])),
    }
    if "backlog after window" in rounds[0]:
        out["backlog after window"] = [r["backlog after window"] for r in rounds]
        out["seconds to drain it"] = sum(r["seconds to drain it"] for r in rounds)
        out["read outcomes"] = outcomes
    return out


def ratios(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Writebehind's ops/s over each other system's: the median of per-round ratios
    (a system with a round of no operation at all gets none)."""
    ours = [r["ops/s"] for r in rounds[SYSTEMS[0]]]
    out = {}
    for other in SYSTEMS[1:]:
        theirs = [r["ops/s"] for r in rounds[other]]
        if all(theirs):
            out[f"x {other}"] = median([a / b for a, b in zip(ours, theirs, strict=True)])
    return out


def _quantiles(samples: list[float]) -> list[float]:
    if not samples:
        return []
    ordered = sorted(samples)
    last = len(ordered) - 1
    return [round(ordered[round(q * last / QUANTILES)] * 1e6, 1) for q in range(QUANTILES + 1)]


async def ycsb(
    redis: Redis,
    db: Any,
    redis_url: str,
    mongo_url: str,
    records: int,
    seconds: float,
    warm_up: float,
    warm: int,
    rounds: int,
    concurrency: int = 16,
    seed: int = 9,
) -> dict[str, Any]:
    """Comparison 9; see the module's docstring. Ratios: writebehind's ops/s over each other's."""
    rng = random.Random(seed)
    loaded = await load(db, records, rng)
    make = Records(rng)
    zipf = ScrambledZipf(records, ZIPF, rng)
    counters = {  # each system inserts keys of its own, read back by its "latest" requests
        system: InsertCounter(records + i * INSERT_RANGE) for i, system in enumerate(SYSTEMS)
    }
    results: dict[str, dict[str, Any]] = {}
    by_round: dict[str, dict[str, float]] = {}
    near = ReadPolicy(near=NearCache())
    async with (
        WriteBehind(redis=redis, mongo=db, prefix=PREFIXES[SYSTEMS[0]]) as behind,
        WriteBehind(redis=redis, mongo=db, prefix=PREFIXES[SYSTEMS[1]]) as through,
    ):
        systems: dict[str, System] = {
            SYSTEMS[0]: Sdk(behind.collection(COLLECTION, reads=near)),
            SYSTEMS[1]: Sdk(through.collection(COLLECTION, mode="write_through")),
            SYSTEMS[2]: CacheAside(redis, db, COLLECTION),
            SYSTEMS[3]: MongoOnly(db, COLLECTION),
        }
        warmed = {}
        hot = zipf.keys[:warm]  # the most requested keys, by rank
        for system, target in systems.items():
            started = time.perf_counter()
            for start in range(0, len(hot), WARM_BATCH):
                await target.warm(sorted(hot[start : start + WARM_BATCH]))
            warmed[system] = time.perf_counter() - started
        async with workers(redis_url, mongo_url, db.name) as pids:
            for w, name in enumerate(RUN_ORDER):
                workload = WORKLOADS[name]
                found: dict[str, list[dict[str, Any]]] = {system: [] for system in SYSTEMS}
                for r in range(rounds):
                    shift = (w * rounds + r) % len(SYSTEMS)
                    for system in SYSTEMS[shift:] + SYSTEMS[:shift]:
                        counter = counters[system]
                        keys = (
                            Latest(counter, records, ZIPF, rng)
                            if workload.distribution == "latest"
                            else zipf
                        )
                        window = await _window(
                            redis, systems[system], system, pids.get(system),
                            workload, keys, counter, make, rng, concurrency, warm_up, seconds,
                        )  # fmt: skip
                        found[system].append(window)
                results[name] = {system: summary(found[system]) for system in SYSTEMS}
                by_round[name] = ratios(found)
    return {
        "records": records,
        "seconds per window": seconds,
        "rounds": rounds,
        "warm-up seconds": warm_up,
        "concurrency": concurrency,
        "load seconds": loaded,
        "records warmed (most requested)": len(hot),
        "share of requests to them": sum(1 / (k + 1) ** ZIPF for k in range(len(hot)))
        / sum(1 / (k + 1) ** ZIPF for k in range(records)),
        "cache warming seconds": warmed,
        "workloads": results,
        "writebehind throughput ratios": by_round,
    }


async def _window(
    redis: Redis,
    target: System,
    system: str,
    pid: int | None,
    *args: Any,
) -> dict[str, Any]:
    """``run_window`` with the system's worker running (if it has one), then its backlog
    persisted before the worker is stopped again."""
    if pid is not None:
        os.kill(pid, signal.SIGCONT)
    try:
        before = _read_outcomes()
        window = await run_window(target, *args)
        if system in PREFIXES:
            window["read outcomes"] = _read_outcomes(before)
            window |= await _drained(redis, PREFIXES[system])
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)
    return window


async def _drained(redis: Redis, prefix: str) -> dict[str, Any]:
    """Wait (untimed, up to 10 minutes) until the worker has persisted the window's writes."""
    streams = KeySpace(prefix, PARTITIONS).streams()
    backlog = await pending_records(redis, streams)
    started = time.perf_counter()
    with anyio.move_on_after(600):
        while await pending_records(redis, streams) > 0:  # noqa: ASYNC110 - a counter in Redis
            await anyio.sleep(0.05)
    return {"backlog after window": backlog, "seconds to drain it": time.perf_counter() - started}


def _read_outcomes(since: dict[str, float] | None = None) -> dict[str, float]:
    """The SDK's read counters of the collection, ``level/outcome``; minus ``since`` if given."""
    now: dict[str, float] = {}
    for counter in (SDK_READS, SDK_NEAR_READS):
        for metric in counter.collect():
            for sample in metric.samples:
                labels = sample.labels
                if sample.name.endswith("_total") and labels["collection"] == COLLECTION:
                    level = labels.get("level", "near cache lookup")
                    now[f"{level}/{labels['outcome']}"] = sample.value
    if since is None:
        return now
    return {k: v - since.get(k, 0.0) for k, v in now.items() if v - since.get(k, 0.0)}
