"""The SDK's hot paths against the least each could be, and against an older revision.

    python -m benchmarks.hot_paths [--steps 2000] [--before REV] [--json FILE]

- ``set``: ``collection.set`` against the minimal ``XADD`` + ``SET`` script
  (comparison 1's baseline (a));
- ``set_many``: of 100 documents, against the same script pipelined
  (comparison 2's baseline), as throughput;
- ``get`` of a cached document against a bare ``HGET`` of its body
  (comparison 8's baseline).

Beside them, the SDK's own scripts sent bare (``write script alone``,
``write script pipelined``, ``READ script alone``): what the server's work and
the wire cost without the SDK's Python, so that a gap can be split between the
two.

With ``--before REV`` the same calls of the package at git revision ``REV``
(``benchmarks/before.py``) run in the same steps, so a change is measured
against what it replaced under the same load. Calls are interleaved step by
step in a shuffled order (``writes.interleaved``); ratios are medians of
per-step paired ratios. Starts its own ``redis-server`` (AOF, ``appendfsync
everysec``); MongoDB is never asked (every ``get`` is a hit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import bson
from redis.asyncio import Redis

from benchmarks import before
from benchmarks.common import document, load, mark_seeded, median, percentile
from benchmarks.writes import MINIMAL, PARTITIONS, interleaved, paired
from writebehind import WriteBehind
from writebehind.core.script_calls import call_script
from writebehind.embedded.servers import RedisServer
from writebehind.observability.logs import configure_logging

SIZE = 100  # documents per set_many


def _summary(samples: dict[str, list[float]], baseline: str) -> dict[str, Any]:
    ratios = paired(samples, baseline)
    return {
        name: {
            "p50 us": round(median(times) * 1e6, 1),
            "p99 us": round(percentile(times, 0.99) * 1e6, 1),
            f"x {baseline} (paired median)": round(ratios[name], 3),
        }
        for name, times in samples.items()
    }


def _setter(coll: Any) -> Callable[[int], Awaitable[Any]]:
    return lambda i: coll.set(i, document(i))


def _many_setter(coll: Any) -> Callable[[int], Awaitable[Any]]:
    return lambda i: coll.set_many([(10**6 + i * SIZE + j, document(j)) for j in range(SIZE)])


def _getter(coll: Any, ids: int) -> Callable[[int], Awaitable[Any]]:
    return lambda i: coll.get(i % ids)


async def run(steps: int, rev: str | None, seed: int) -> dict[str, Any]:
    sdks: dict[str, Any] = {"sdk": WriteBehind}
    if rev is not None:
        sdks[f"sdk@{rev}"] = before.load(rev).WriteBehind
    with RedisServer("--appendfsync", "everysec", appendonly=True) as server:
        redis = Redis.from_url(server.url)
        mongo: Any = object()  # never asked: writes do not, and every get is a hit
        async with AsyncExitStack() as stack:
            users = {}
            for n, (name, cls) in enumerate(sdks.items()):
                wb = await stack.enter_async_context(
                    cls(redis=redis, mongo=mongo, prefix=f"hp{n}", partitions=PARTITIONS)
                )
                if hasattr(wb, "seeder"):  # trees with version floors (issue 17) seed first
                    await mark_seeded(wb)
                users[name] = wb.collection("users")
            keys = next(iter(users.values()))._wb.keys
            minimal = redis.register_script(MINIMAL)
            sha = await redis.script_load(MINIMAL)
            encoded = {i: bson.encode({"_id": i, **document(i)}) for i in range(-200, steps)}

            def bare_set(i: int) -> Awaitable[Any]:
                p = keys.partition_of("users", i)
                return minimal(
                    keys=[f"{{m{p}}}:s", f"{{m{p}}}:c:{i}"], args=["set", "u", encoded[i]]
                )

            sdk = users["sdk"]._wb  # this tree's client: its scripts, group and limit
            await redis.script_load(sdk.scripts.write.script)

            def write_keys(p: int, entry: str) -> list[str]:
                # The SDK's KEYS for the write script (sdk/collection.py, script_keys).
                return [keys.stream(p), entry, keys.seeded(p), keys.lease_of_entry(p, entry)]

            def write_args(body: bytes) -> list[Any]:
                return ["set", "users", body, "", sdk.group, sdk.max_backlog, secrets.token_hex(8)]

            def script_set(i: int) -> Awaitable[Any]:
                p, entry = keys.entry_of("users", 5 * 10**6 + i)
                args = write_args(encoded[i])
                return call_script(redis, sdk.scripts.write, write_keys(p, entry), args)

            set_calls: dict[str, Callable[[int], Awaitable[Any]]] = {
                "minimal script": bare_set,
                "write script alone": script_set,
            }
            for name, coll in users.items():
                set_calls[f"{name} set"] = _setter(coll)
            results: dict[str, Any] = {"steps": steps, "before": rev}
            rng = random.Random(seed)
            sets = await interleaved(set_calls, steps, rng)
            results["set"] = _summary(sets, "minimal script")

            async def bare_many(i: int) -> None:
                pipe = redis.pipeline(transaction=False)
                for j in range(SIZE):
                    doc_id = i * SIZE + j
                    p = keys.partition_of("users", doc_id)
                    body = bson.encode({"_id": doc_id, **document(j)})
                    pipe.evalsha(sha, 2, f"{{n{p}}}:s", f"{{n{p}}}:c:{doc_id}", "set", "u", body)
                await pipe.execute()

            async def script_many(i: int) -> None:
                pipe = redis.pipeline(transaction=False)
                for j in range(SIZE):
                    p, entry = keys.entry_of("users", 6 * 10**6 + i * SIZE + j)
                    body = bson.encode({"_id": i * SIZE + j, **document(j)})
                    args = write_args(body)
                    pipe.execute_command(
                        "EVALSHA", sdk.scripts.write.sha, 4, *write_keys(p, entry), *args
                    )
                await pipe.execute()

            many_calls: dict[str, Callable[[int], Awaitable[Any]]] = {
                "bare pipelined": bare_many,
                "write script pipelined": script_many,
            }
            for name, coll in users.items():
                many_calls[f"{name} set_many"] = _many_setter(coll)
            many = await interleaved(many_calls, max(20, steps // 20), rng)
            base = many["bare pipelined"]
            results["set_many"] = {
                name: {
                    "docs/s": round(SIZE / median(times)),
                    "throughput x bare (paired median)": round(
                        median([b / t for t, b in zip(times, base, strict=True)]), 3
                    ),
                }
                for name, times in many.items()
            }

            entries = {name: c._wb.keys for name, c in users.items()}

            def bare_get(i: int) -> Awaitable[Any]:
                ks = entries["sdk"]
                doc_id = i % steps
                return redis.hget(ks.cache(ks.partition_of("users", doc_id), "users", doc_id), "d")

            def read_script(i: int) -> Awaitable[Any]:
                entry = keys.entry_of("users", i % steps)[1]
                return call_script(redis, sdk.scripts.read, [entry], [])

            get_calls: dict[str, Callable[[int], Awaitable[Any]]] = {
                "bare HGET": bare_get,
                "READ script alone": read_script,
            }
            for name, coll in users.items():
                get_calls[f"{name} get"] = _getter(coll, steps)
            gets = await interleaved(get_calls, steps, rng)
            results["get"] = _summary(gets, "bare HGET")
        await redis.aclose()
    results["load after"] = load()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--before", help="git revision to measure alongside (e.g. HEAD~1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    configure_logging("error")
    results = asyncio.run(run(args.steps, args.before, args.seed))
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
