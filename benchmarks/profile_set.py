"""Profile of the SDK's ``set`` (pyinstrument): where a write's client-side time goes.

    python -m benchmarks.profile_set [--calls 5000]

Starts a private ``redis-server``; MongoDB is not touched by a write.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from pyinstrument import Profiler
from redis.asyncio import Redis

from benchmarks.common import document
from writebehind import WriteBehind
from writebehind.embedded.servers import RedisServer


async def main(calls: int) -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        mongo: Any = object()  # never used by a write
        async with WriteBehind(redis=redis, mongo=mongo, prefix="prof", partitions=16) as wb:
            users = wb.collection("users")
            for i in range(300):
                await users.set(i, document(i))
            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            for i in range(calls):
                await users.set(i, document(i))
            profiler.stop()
        await redis.aclose()
    print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    asyncio.run(main(parser.parse_args().calls))
