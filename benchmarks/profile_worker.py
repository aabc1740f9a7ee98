"""Profile of the worker's own loop (pyinstrument), MongoDB taken out of the path.

    python -m benchmarks.profile_worker [--records 20000]

The sink answers "persisted" at once (as in comparison 4), so the profile shows
what the worker itself spends per record: reading, decoding, coalescing,
acknowledging.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
from pyinstrument import Profiler
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from benchmarks.common import small_document
from writebehind import WriteBehind
from writebehind.embedded.servers import RedisServer, SecantusServer
from writebehind.observability.logs import configure_logging
from writebehind.settings import Settings
from writebehind.worker.runner import Worker


async def main(records: int) -> None:
    configure_logging("error")
    with RedisServer() as server, SecantusServer() as mongo_server:
        redis = Redis.from_url(server.url)
        client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.url)
        db = client["profiled"]  # start-up checks only: the sink below never writes
        async with WriteBehind(redis=redis, mongo=db, prefix="pw", max_backlog=0) as wb:
            users = wb.collection("profiled")
            for start in range(0, records, 1000):
                await users.set_many([(i, small_document(i)) for i in range(start, start + 1000)])
        worker = Worker(redis, db, Settings(prefix="pw", metrics_address=None))

        async def no_mongodb(name: str, pendings: Any, fence: Any = None) -> list[Any]:
            return [None] * len(pendings)

        worker.sink.write = no_mongodb  # type: ignore[method-assign]
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        profiler.start()
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            while worker.stats.persisted < records:  # noqa: ASYNC110 - the bench reads a counter
                await anyio.sleep(0.01)
            elapsed = time.perf_counter() - started
            worker.request_stop()
        profiler.stop()
        await redis.aclose()
        await client.close()
    print(f"{records / elapsed:,.0f} records/s without MongoDB")
    print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    anyio.run(main, parser.parse_args().records)
