"""Redis's own time per call of the write script (``INFO commandstats``), with and without
the backlog check, against the minimal ``XADD`` + ``SET`` script, in alternating blocks.

    python -m benchmarks.script_cost [--history 0] [--blocks 5]

``--history N`` first fills the stream with N acknowledged entries; with
``max_backlog`` below N the write script's O(1) ``XLEN`` bound cannot decide
and it runs the exact ``XINFO GROUPS`` check.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

import bson
from redis.asyncio import Redis

from benchmarks.writes import MINIMAL
from writebehind.core.scripts import SEED, WRITE
from writebehind.embedded.servers import RedisServer


async def main(history: int, blocks: int) -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        shas = {
            "minimal": await redis.script_load(MINIMAL),
            "write": await redis.script_load(WRITE),
        }
        body = bson.encode({"_id": 1, "pad": "x" * 800})
        stream = "{p0}:s"
        await redis.xgroup_create(stream, "writebehind", id="0", mkstream=True)
        seeded = "{p0}:seeded"  # the write script refuses an unseeded partition (WBUNSEEDED)
        await redis.eval(SEED, 2, stream, seeded, "")
        if history:
            pipe = redis.pipeline(transaction=False)
            for _ in range(history):
                pipe.xadd(stream, {"d": "x"})
            await pipe.execute()
            reply: Any = await redis.xreadgroup("writebehind", "c", {stream: ">"}, count=history)
            await redis.xack(stream, "writebehind", *[i for _, got in reply for i, _ in got])
        limit_checked = max(1, history // 2) if history else 10_000_000
        kinds = {"minimal": 0, "write, backlog checked": limit_checked, "write, no limit": 0}
        per_call: dict[str, list[float]] = {k: [] for k in kinds}
        for block in range(blocks):
            for kind, limit in kinds.items():
                await redis.config_resetstat()
                pipe = redis.pipeline(transaction=False)
                for i in range(3000):
                    entry = f"{{p0}}:{kind[:5]}{i % 100}"
                    if kind == "minimal":
                        pipe.evalsha(shas["minimal"], 2, stream, entry, "set", "c", body)
                    else:
                        nonce = f"{block}-{kind}-{i}"
                        args: list[Any] = ["set", "c", body, "", "writebehind", limit, nonce]
                        lease = f"{entry}:lease"
                        pipe.evalsha(shas["write"], 4, stream, entry, seeded, lease, *args)
                await pipe.execute()
                stats = await redis.info("commandstats")
                per_call[kind].append(stats["cmdstat_evalsha"]["usec_per_call"])
            await redis.xgroup_setid(stream, "writebehind", "$")  # the new entries: no backlog
        await redis.aclose()
    for kind, values in per_call.items():
        print(f"{kind:24} median {statistics.median(values):6.2f} µs per call  {sorted(values)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.history, args.blocks))
