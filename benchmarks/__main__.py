"""Run every comparison in one go: ``python -m benchmarks [--quick] [--only 7,8,9] [--out DIR]``.

Starts its own ``redis-server`` (AOF, ``appendfsync everysec``) and SecantusDB,
and a delay line (``benchmarks/delay_proxy.py``) in front of SecantusDB for
the distant-MongoDB drain. Writes ``results.json``, ``results.md`` and the
plots into ``--out``. ``--quick`` takes a few minutes with smaller runs;
``--only`` runs some of the comparisons (6 needs 3: its rate is 3's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from benchmarks import drain, flow, memory, reads, report, writes, ycsb
from benchmarks.common import load, machine
from writebehind.embedded.servers import RedisServer, SecantusServer
from writebehind.observability.logs import configure_logging

FULL = {
    "set steps": 3000,
    "set_many steps": 200,
    "drain records": 15_000,
    "batch sizes": [250, 500, 1000, 2000],
    "concurrencies": [1, 2, 4, 8],
    "drain rounds": 3,
    "zipf writes": 50_000,
    "lag seconds": 20.0,
    "memory records": 1_000_000,
    "memory records into MongoDB": 10_000,
    "read steps": 3000,
    "ycsb records": 100_000,
    "ycsb warmed records": 10_000,
    "ycsb seconds": 1.0,
    "ycsb warm-up seconds": 0.5,
    "ycsb rounds": 3,
}
QUICK = {
    "set steps": 1000,
    "set_many steps": 60,
    "drain records": 4000,
    "batch sizes": [500, 1000],
    "concurrencies": [1, 4],
    "drain rounds": 2,
    "zipf writes": 20_000,
    "lag seconds": 8.0,
    "memory records": 100_000,
    "memory records into MongoDB": 4000,
    "read steps": 1000,
    "ycsb records": 10_000,
    "ycsb warmed records": 10_000,
    "ycsb seconds": 0.75,
    "ycsb warm-up seconds": 0.25,
    "ycsb rounds": 2,
}
COMPARISONS = "123456789"
LATENCY = 0.005  # seconds each way: issue 16's distant MongoDB


@contextmanager
def delay_line(port: int, latency: float) -> Iterator[int]:
    """A delay line to ``port`` in its own process; yields its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.delay_proxy", str(port), str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


async def run(plan: dict[str, Any], out: Path, only: str = COMPARISONS) -> dict[str, Any]:
    """The comparisons in ``only``; ``out/partial.json`` is rewritten after each, so a failure
    keeps them."""
    results: dict[str, Any] = {"machine": machine(), "plan": plan, "comparisons": {}}
    found = results["comparisons"]
    started = time.monotonic()

    def step(name: str, value: dict[str, Any]) -> None:
        value["load after"] = load()
        found[name] = value
        (out / "partial.json").write_text(json.dumps(results, indent=1) + "\n")
        print(f"[{time.monotonic() - started:6.0f} s] {name} done (load {value['load after']})")

    with (
        RedisServer("--appendfsync", "everysec", appendonly=True) as redis_server,
        SecantusServer() as mongo_server,
        delay_line(mongo_server.port, LATENCY) as far_port,
    ):
        redis = Redis.from_url(redis_server.url)
        client: AsyncMongoClient[Any] = AsyncMongoClient(
            mongo_server.url, uuidRepresentation="standard"
        )
        db = client["bench"]
        try:
            if "1" in only:
                step("1 set latency", await writes.set_latency(redis, db, plan["set steps"], 1))
            if "2" in only:
                step(
                    "2 set_many throughput",
                    await writes.set_many_throughput(redis, db, plan["set_many steps"], 100, 2),
                )
            drains = (
                plan["drain records"],
                plan["batch sizes"],
                plan["concurrencies"],
                plan["drain rounds"],
            )
            if "3" in only:
                direct = await drain.drain_comparison(redis, mongo_server.url, *drains, "direct")
                step("3 drain, direct", direct)
                far_url = f"mongodb://127.0.0.1:{far_port}/?directConnection=true"
                step(
                    "3 drain, 5 ms each way",
                    await drain.drain_comparison(redis, far_url, *drains, "far"),
                )
                # A fresh client: the first one sat idle through the drains, and
                # the server may have closed its connections meanwhile.
                await client.close()
                client = AsyncMongoClient(mongo_server.url, uuidRepresentation="standard")
                db = client["bench"]
            if "4" in only:
                rates = {
                    n: await flow.ceiling_processes(
                        redis, db, redis_server.url, mongo_server.url, plan["drain records"], n
                    )
                    for n in (1, 2, 4)
                }
                ceiling: dict[str, Any] = {
                    "records": plan["drain records"],
                    "records/s without MongoDB, by processes": rates,
                }
                if "3" in only:
                    ceiling[report.DRAIN_RATIO] = rates[1] / direct["default worker rec/s"]
                step("4 worker ceiling", ceiling)
            if "5" in only:
                step("5 coalescing", await flow.coalescing(redis, db, plan["zipf writes"]))
            if "6" in only:
                capacity = direct["default worker rec/s"]
                step(
                    "6 lag at half capacity",
                    await flow.lag(redis, db, redis_server.url, capacity / 2, plan["lag seconds"]),
                )
            if "7" in only:
                urls = (redis_server.url, mongo_server.url)
                without = await memory.worker_memory(
                    redis, db, *urls, plan["memory records"], "none"
                )
                into = await memory.worker_memory(
                    redis, db, *urls, plan["memory records into MongoDB"], "mongodb"
                )
                step("7 worker memory", {"without MongoDB": without, "into SecantusDB": into})
            if "8" in only:
                step("8 reads", await reads.read_latency(redis, db, plan["read steps"], 8))
            if "9" in only:
                step(
                    "9 ycsb",
                    await ycsb.ycsb(
                        redis,
                        db,
                        redis_server.url,
                        mongo_server.url,
                        plan["ycsb records"],
                        plan["ycsb seconds"],
                        plan["ycsb warm-up seconds"],
                        plan["ycsb warmed records"],
                        plan["ycsb rounds"],
                    ),
                )
        finally:
            await redis.aclose()
            await client.close()
    results["seconds"] = time.monotonic() - started
    return results


def chosen(text: str) -> str:
    """``--only``'s comparisons, as a string of digits: "7,8,9" -> "789"."""
    parts = [part.strip() for part in text.split(",")]
    if not all(len(part) == 1 and part in COMPARISONS for part in parts):
        raise argparse.ArgumentTypeError(f"comparisons are numbers 1 to 9, e.g. 7,8,9: {text!r}")
    digits = "".join(sorted(set(parts)))
    if "6" in digits and "3" not in digits:
        raise argparse.ArgumentTypeError("comparison 6 needs 3 (it paces at half 3's drain rate)")
    return digits


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--only`` defaults to every comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a few minutes)")
    parser.add_argument("--out", default="docs/bench", help="where results and plots go")
    parser.add_argument(
        "--only", type=chosen, default=",".join(COMPARISONS), help="comparisons, e.g. 7,8,9"
    )
    return parser.parse_args(argv)


def main() -> None:
    args = arguments()
    configure_logging("error")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = anyio.run(run, QUICK if args.quick else FULL, out, args.only)
    results["mode"] = "quick" if args.quick else "full"
    if args.only != COMPARISONS:
        results["mode"] += f", only {','.join(args.only)}"
    (out / "partial.json").unlink(missing_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(report.markdown(results))
    report.plots(results, out)
    print(report.markdown(results))


if __name__ == "__main__":
    main()
