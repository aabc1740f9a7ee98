"""Write latency benchmark: an SDK write against a bare Redis round trip, in the same run.

The promise is that a write returns in about one Redis round trip. One writer
makes sequential calls against a private ``redis-server`` (AOF, ``appendfsync
everysec``, as production should run it) with one replica attached:

- **ping**: ``PING``, the round trip itself;
- **minimal script**: a bare Lua script of ``XADD`` + ``SET`` (the least a
  write-behind write can be: issue 16's baseline (a));
- **hset**: a bare ``HSET`` of the same encoded document: one write, no script;
- **write script alone**: the SDK's write script with ready arguments (the
  server's share: backlog check, ``XADD``, cache entry);
- **write script, exact backlog check**: the same on a partition whose stream
  (acknowledged history kept for replay) is longer than ``max_backlog``, so the
  O(1) ``XLEN`` bound cannot decide and ``XINFO GROUPS`` runs (the check every
  write paid before);
- **sdk set**: ``collection.set`` (checks and BSON encoding, then that script);
- **sdk set, wait_replicas=1**: the same, followed by ``WAIT 1`` in one pipeline.

Baseline and subjects are interleaved call by call: each step makes one call of
every kind, in a shuffled order, so a load spike from elsewhere on the machine
hits all of them alike. Each subject's call is divided by the PING of the same
step (a paired ratio); a round reports the median of those ratios, and the run
reports the median over rounds with the lowest and highest round beside it:
that spread is how far another run on the same machine may land.

    PYTHONPATH=. python scripts/bench_write.py [--calls 2000] [--rounds 7] [--seed 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import bson
from redis.asyncio import Redis

from benchmarks.writes import interleaved, paired
from writebehind import WriteBehind
from writebehind.core.script_calls import call_script
from writebehind.embedded.servers import RedisServer

PARTITIONS = 16
LONG_HISTORY = 10_000  # acked entries on the exact-check partition; its max_backlog is half

MINIMAL = """
redis.call('XADD', KEYS[1], '*', 'op', ARGV[1], 'c', ARGV[2], 'd', ARGV[3], 'k', KEYS[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
"""


def document(i: int) -> dict[str, Any]:
    return {"name": f"user-{i}", "balance": i * 3, "tags": ["a", "b", str(i % 7)], "pad": "x" * 800}


Call = Callable[[int], Awaitable[Any]]


async def wait_replica_online(primary: Redis) -> None:
    with anyio.fail_after(30):
        while True:
            info = await primary.info("replication")
            if int(info.get("connected_slaves", 0)) >= 1 and "online" in str(info.get("slave0")):
                return
            await anyio.sleep(0.05)


async def one_round(primary_url: str, calls: int, rng: random.Random) -> dict[str, list[float]]:
    redis = Redis.from_url(primary_url)
    # The SDK needs a MongoDB handle but never touches it on a write of a seeded partition
    # (every partition is marked seeded below, with no floor: nothing in MongoDB to stay above).
    mongo: Any = object()
    plain = WriteBehind(redis=redis, mongo=mongo, prefix="bench", partitions=PARTITIONS)
    waiting = WriteBehind(
        redis=redis, mongo=mongo, prefix="bench", partitions=PARTITIONS, wait_replicas=1
    )
    users, replicated = plain.collection("users"), waiting.collection("replicated")
    encoded = [bson.encode({"_id": i, **document(i)}) for i in range(calls + 200)]
    keys = plain.keys
    minimal = redis.register_script(MINIMAL)
    long_stream = await acked_history(redis, "long", LONG_HISTORY)
    for p in range(PARTITIONS):
        await call_script(redis, plain.scripts.seed, [keys.stream(p), keys.seeded(p)], [""])
    await call_script(redis, plain.scripts.seed, [long_stream, "{long}:seeded"], [""])

    def script(i: int) -> Any:
        # The server's share: the same script and arguments, nothing checked or encoded here.
        p = keys.partition_of("bare", i)
        return plain.scripts.write(
            keys=[keys.stream(p), keys.cache(p, "bare", i), keys.seeded(p)],
            args=["set", "bare", encoded[i], "", plain.group, plain.max_backlog, f"n{i}"],
        )

    def exact(i: int) -> Any:
        return plain.scripts.write(
            keys=[long_stream, f"{{long}}:c:{i}", "{long}:seeded"],
            args=["set", "bare", encoded[i], "", plain.group, LONG_HISTORY // 2, f"n{i}"],
        )

    calls_by_kind: dict[str, Call] = {
        "ping": lambda i: redis.ping(),
        "minimal script": lambda i: minimal(
            keys=[f"{{m}}:s:{i % PARTITIONS}", f"{{m}}:c:{i}"], args=["set", "bare", encoded[i]]
        ),
        "hset": lambda i: redis.hset(f"bare:{i}", "d", encoded[i]),
        "write script alone": script,
        "write script, exact backlog check": exact,
        "sdk set": lambda i: users.set(i, document(i)),
        "sdk set, wait_replicas=1": lambda i: replicated.set(i, document(i)),
    }
    try:
        samples = await interleaved(calls_by_kind, calls, rng)
        await redis.flushall()
        return samples
    finally:
        await redis.aclose()


async def acked_history(redis: Redis, tag: str, entries: int) -> str:
    """A stream of ``entries`` records, all delivered to our group and acknowledged."""
    stream = f"{{{tag}}}:s"
    await redis.delete(stream)
    await redis.xgroup_create(stream, "writebehind", id="0", mkstream=True)
    pipe = redis.pipeline(transaction=False)
    for i in range(entries):
        pipe.xadd(stream, {"op": "set", "k": f"old{i}"})
    await pipe.execute()
    reply: Any = await redis.xreadgroup("writebehind", "bench", {stream: ">"}, count=entries)
    await redis.xack(stream, "writebehind", *[entry_id for _, got in reply for entry_id, _ in got])
    return stream


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * q) - 1)]


async def run(calls: int, rounds: int, seed: int) -> dict[str, Any]:
    """Per kind: paired ratios to PING and to the minimal script, and call times (µs)."""
    rng = random.Random(seed)
    primary = RedisServer("--appendfsync", "everysec", appendonly=True)
    with primary, RedisServer("--replicaof", "127.0.0.1", str(primary.port)):
        client = Redis.from_url(primary.url)
        await wait_replica_online(client)
        await client.aclose()
        per_round = [await one_round(primary.url, calls, rng) for _ in range(rounds)]
    out: dict[str, Any] = {"calls": calls, "rounds": rounds, "kinds": {}}
    for baseline in ("ping", "minimal script"):
        ratios = [paired(r, baseline) for r in per_round]
        for name in per_round[0]:
            by_round = sorted(r[name] for r in ratios)
            kind = out["kinds"].setdefault(name, {})
            kind[f"x {baseline}"] = statistics.median(by_round)
            kind[f"x {baseline} rounds"] = [by_round[0], by_round[-1]]
    base_every = [t for r in per_round for t in r["minimal script"]]
    for name, kind in out["kinds"].items():
        every_call = [t for r in per_round for t in r[name]]
        kind["p50 us"] = statistics.median(every_call) * 1e6
        kind["p99 us"] = percentile(every_call, 0.99) * 1e6
        kind["p99 x minimal script"] = percentile(every_call, 0.99) / percentile(base_every, 0.99)
        kind["samples us"] = [round(t * 1e6, 1) for t in every_call]
    return out


async def main(calls: int, rounds: int, seed: int, json_path: str | None) -> None:
    result = await run(calls, rounds, seed)
    print(f"{calls} steps per round (one call of each kind per step, shuffled), {rounds} rounds")
    print(
        f"{'':34} {'x ping':>7} {'(rounds)':>11} {'x minimal':>10} {'(rounds)':>11} "
        f"{'median call':>12} {'p99 call':>9}"
    )
    for name, k in result["kinds"].items():
        lo, hi = k["x ping rounds"]
        mlo, mhi = k["x minimal script rounds"]
        print(
            f"{name:34} {k['x ping']:7.2f} {lo:5.2f}-{hi:<5.2f} {k['x minimal script']:10.2f} "
            f"{mlo:5.2f}-{mhi:<5.2f} {k['p50 us']:10.0f}µs {k['p99 us']:7.0f}µs"
        )
    if json_path:
        await anyio.Path(json_path).write_text(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="steps per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1, help="for the call order")
    parser.add_argument("--json", help="also write the results (and every call's time) here")
    args = parser.parse_args()
    anyio.run(main, args.calls, args.rounds, args.seed, args.json)
