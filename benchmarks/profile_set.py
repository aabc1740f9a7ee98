"""Profile of the SDK's ``set``, ``get`` or ``set_many`` (pyinstrument): where client time goes.

    python -m benchmarks.profile_set [--calls 5000] [--get | --many]

``--many``: ``calls / 100`` calls of ``set_many`` with 100 documents each.

Starts a private ``redis-server``; MongoDB is not touched: a write never asks
it, and every ``get`` is a Redis hit (the documents were just written).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from pyinstrument import Profiler
from redis.asyncio import Redis

from benchmarks.common import document, mark_seeded
from writebehind import WriteBehind
from writebehind.embedded.servers import RedisServer


async def main(calls: int, get: bool, many: bool = False) -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        mongo: Any = object()  # never used by a write of a seeded partition
        async with WriteBehind(redis=redis, mongo=mongo, prefix="prof", partitions=16) as wb:
            await mark_seeded(wb)
            users = wb.collection("users")
            for i in range(300):
                await users.set(i, document(i))
            for i in range(300, calls):
                await users.set(i, document(i))
            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            for i in range(calls // 100 if many else calls):
                if many:
                    await users.set_many([(j, document(j)) for j in range(i * 100, i * 100 + 100)])
                elif get:
                    await users.get(i)
                else:
                    await users.set(i, document(i))
            profiler.stop()
        await redis.aclose()
    print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--get", action="store_true", help="profile get (a Redis hit) instead")
    kind.add_argument("--many", action="store_true", help="profile set_many of 100 instead")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.get, args.many))
