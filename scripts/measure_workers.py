"""Drain throughput with 1, 2 and 4 worker processes, on a single Redis and a Redis Cluster.

For each Redis (a standalone ``redis-server``; a local cluster of 3 masters with
one replica each, ``tests/support/cluster.py``), each sink (SecantusDB, and
none: the sink answers "persisted" at once, to show the Redis side's
ceiling) and each process count, it writes a backlog of one record per
document through the SDK (16 partitions), starts the worker processes, lets
each run its start-up checks, then tells them all to go and times until no
partition has a record pending or undelivered. It also reads the CPU time
the workers, the Redis nodes and SecantusDB used meanwhile (``/proc``), and
the whole machine's busy time, to say where the cores were the limit.
Rounds rotate the order of the variants. Neither Redis has AOF on.
docs/scaling.md ("Workers") reports its output.

    PYTHONPATH=. python scripts/measure_workers.py [--records 6000] [--ceiling-records 40000]
        [--rounds 2] [--out worker_scaling.json]

``python scripts/measure_workers.py worker REDIS_URL CLUSTER MONGO_URL DB PREFIX SINK``
is one worker process (what the driver starts).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from pymongo import AsyncMongoClient

from benchmarks.ceiling_worker import reap, run_gated, tell, wait_ready
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.core.redis_client import connect
from writebehind.embedded.servers import RedisServer, SecantusServer, ServerProcess
from writebehind.observability.logs import configure_logging
from writebehind.settings import Settings

PARTITIONS = 16
COUNTS = (1, 2, 4)
REPO = Path(__file__).resolve().parents[1]


def document(i: int) -> dict[str, Any]:
    """About 100 bytes of BSON, as the drain benchmark's (benchmarks/common.py)."""
    return {"name": f"user-{i}", "balance": i * 3, "tags": ["a", "b", str(i % 7)], "n": {"x": i}}


# -- one worker process -------------------------------------------------------


async def worker_main(
    redis_url: str, cluster: str, mongo_url: str, database: str, prefix: str, sink: str
) -> None:
    """One gated worker process (``benchmarks.ceiling_worker.run_gated``)."""
    configure_logging("error")
    redis = connect(redis_url, cluster=cluster == "1")
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, uuidRepresentation="standard")
    settings = Settings(
        prefix=prefix,
        partitions=PARTITIONS,
        metrics_address=None,
        claim_idle=600.0,  # no claims: records delivered before "go" wait for their worker
        redis_cluster=cluster == "1",
    )
    await run_gated(redis, client[database], settings, sink)
    await redis.aclose()
    await client.close()


# -- CPU accounting -----------------------------------------------------------


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of every core, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _process_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children are not counted), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by groups of processes, and the machine's busy cores, over a span."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.start = {name: sum(map(_process_seconds, pids)) for name, pids in groups.items()}
        self.machine = _machine_jiffies()
        self.wall = time.perf_counter()

    def cores(self) -> dict[str, float]:
        """Average cores busy per group, and ``machine`` (everything, other helpers' too)."""
        wall = time.perf_counter() - self.wall
        out = {
            name: (sum(map(_process_seconds, pids)) - self.start[name]) / wall
            for name, pids in self.groups.items()
        }
        busy, total = _machine_jiffies()
        share = (busy - self.machine[0]) / max(1, total - self.machine[1])
        out["machine"] = share * (os.cpu_count() or 1)
        return {k: round(v, 2) for k, v in out.items()}


# -- the driver ---------------------------------------------------------------


async def backlog_left(redis: Any, prefix: str) -> int:
    """Records pending or undelivered in the group, over every partition stream."""
    total = 0
    for stream in KeySpace(prefix, PARTITIONS).streams():
        for group in await redis.xinfo_groups(stream):
            if group["name"] == b"writebehind":
                total += int(group["pending"]) + int(group.get("lag") or 0)
    return total


async def one_drain(
    redis_url: str,
    cluster: bool,
    redis_pids: list[int],
    mongo: ServerProcess,
    sink: str,
    processes: int,
    records: int,
    tag: str,
) -> dict[str, Any]:
    redis = connect(redis_url, cluster=cluster)
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo.url, uuidRepresentation="standard")
    database = f"scaling_{tag}"
    try:
        async with WriteBehind(
            redis=redis, mongo=client[database], prefix=tag, partitions=PARTITIONS, max_backlog=0
        ) as wb:
            users = wb.collection("users")
            for start in range(0, records, 1000):
                await users.set_many(
                    [(i, document(i)) for i in range(start, min(records, start + 1000))]
                )
        command = [
            sys.executable, __file__, "worker",
            redis_url, "1" if cluster else "0", mongo.url, database, tag, sink,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs: list[Process] = [
            await anyio.open_process(command, env=env) for _ in range(processes)
        ]
        try:
            await wait_ready(procs, 120)
            assert mongo.proc is not None
            meter = CpuMeter(
                {
                    "workers": [p.pid for p in procs],
                    "redis": redis_pids,
                    "mongodb": [mongo.proc.pid],
                }
            )
            began = time.perf_counter()
            await tell(procs, b"go")
            while await backlog_left(redis, tag) > 0:  # noqa: ASYNC110
                await anyio.sleep(0.02)
            elapsed = time.perf_counter() - began
            cores = meter.cores()
        finally:
            await reap(procs)
        await client.drop_database(database)
    finally:
        await redis.aclose()
        await client.close()
    return {"rate": records / elapsed, "seconds": elapsed, "cores": cores}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Records/s (min, median, max over rounds), the median cores each group used, and the
    CPU microseconds per record of each group: what a record costs, whatever share of the
    machine the run got (other processes included)."""
    rates = sorted(x["rate"] for x in runs)
    groups = ("workers", "redis", "mongodb")
    per_record = {
        name: round(statistics.median(1e6 * x["cores"][name] / x["rate"] for x in runs))
        for name in groups
    }
    per_record["total"] = round(
        statistics.median(1e6 * sum(x["cores"][g] for g in groups) / x["rate"] for x in runs)
    )
    return {
        "cpu us per record": per_record,
        "records/s min median max": [
            round(rates[0]),
            round(statistics.median(rates)),
            round(rates[-1]),
        ],
        "median cores": {
            name: round(statistics.median(x["cores"][name] for x in runs), 2)
            for name in runs[0]["cores"]
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.support.cluster import LocalCluster

    results: dict[str, Any] = {
        "cores": os.cpu_count(),
        "partitions": PARTITIONS,
        "records": {"secantusdb": args.records, "none": args.ceiling_records},
        "rounds": args.rounds,
        "load at start": os.getloadavg(),
        "runs": [],
    }
    with RedisServer() as single, SecantusServer() as mongo, LocalCluster() as cluster:
        assert single.proc is not None
        redises = {
            "single": (single.url, False, [single.proc.pid]),
            "cluster": (
                cluster.url,
                True,
                [n.proc.pid for n in cluster.nodes if n.proc is not None],
            ),
        }
        variants = [
            (where, sink, n)
            for sink in ("secantusdb", "none")
            for where in ("single", "cluster")
            for n in COUNTS
        ]
        for r in range(args.rounds):
            shift = r * len(variants) // max(1, args.rounds)
            for where, sink, n in variants[shift:] + variants[:shift]:
                url, is_cluster, pids = redises[where]
                records = args.records if sink == "secantusdb" else args.ceiling_records
                tag = f"ws{r}{where[0]}{sink[0]}{n}"
                found = await one_drain(url, is_cluster, pids, mongo, sink, n, records, tag)
                found.update(redis=where, sink=sink, processes=n, round=r)
                results["runs"].append(found)
                print(json.dumps(found), flush=True)
                if is_cluster:
                    cluster.flushall()
                else:
                    with_client = connect(url)
                    await with_client.flushall()
                    await with_client.aclose()
    results["load at end"] = os.getloadavg()
    results["summary"] = {
        f"{where} {sink} {n}": summarise(
            [
                x
                for x in results["runs"]
                if (x["redis"], x["sink"], x["processes"]) == (where, sink, n)
            ]
        )
        for where, sink, n in variants
    }
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        redis_url, cluster, mongo_url, database, prefix, sink = sys.argv[2:8]
        anyio.run(worker_main, redis_url, cluster, mongo_url, database, prefix, sink)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=6000, help="backlog drained into MongoDB")
    parser.add_argument(
        "--ceiling-records", type=int, default=40_000, help="backlog drained with no MongoDB"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="worker_scaling.json")
    args = parser.parse_args()
    configure_logging("error")
    results = anyio.run(run, args)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["summary"], indent=1))


if __name__ == "__main__":
    main()
