"""One worker process for comparison 4: MongoDB taken out of the path.

    python -m benchmarks.ceiling_worker REDIS_URL MONGO_URL PREFIX [mongodb]

Runs its start-up checks, prints ``ready``, waits for a line on stdin, drains
(the sink answers "persisted" at once), and stops at the next line. With
``mongodb`` the sink is left as it is: the records go to MongoDB (comparison 7
measures this process's memory both ways).
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from writebehind.observability.logs import configure_logging
from writebehind.settings import Settings
from writebehind.worker.runner import Worker


async def no_mongodb(name: str, pendings: Any) -> list[Any]:
    return [None] * len(pendings)


async def main(redis_url: str, mongo_url: str, prefix: str, sink: str) -> None:
    configure_logging("error")
    redis = Redis.from_url(redis_url)
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    worker = Worker(redis, client["ceiling"], Settings(prefix=prefix, metrics_address=None))
    if sink != "mongodb":
        worker.sink.write = no_mongodb  # type: ignore[method-assign]
    await worker.startup_checks()
    stdin = anyio.wrap_file(sys.stdin)
    print("ready", flush=True)
    await stdin.readline()
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        await stdin.readline()
        worker.request_stop()
    await redis.aclose()
    await client.close()


if __name__ == "__main__":
    sink = sys.argv[4] if len(sys.argv) > 4 else "none"
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], sink)
