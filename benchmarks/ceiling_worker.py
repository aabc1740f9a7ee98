"""One worker process for comparison 4: MongoDB taken out of the path.

    python -m benchmarks.ceiling_worker REDIS_URL MONGO_URL PREFIX [mongodb]

Runs its start-up checks, prints ``ready``, waits for a line on stdin, drains
(the sink answers "persisted" at once), and stops at the next line. With
``mongodb`` the sink is left as it is: the records go to MongoDB (comparison 7
measures this process's memory both ways).

The gating (``run_gated``) and the driver's side (``wait_ready``, ``tell``, ``reap``)
are shared with ``scripts/measure_workers.py``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import Any

import anyio
from anyio.abc import Process
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from writebehind.observability.logs import configure_logging
from writebehind.settings import Settings
from writebehind.worker.runner import Worker


async def no_mongodb(name: str, pendings: Any, fence: Any = None) -> list[Any]:
    """A sink that answers "persisted" at once: MongoDB (and the floor and fence before it)
    out of the path."""
    return [None] * len(pendings)


async def run_gated(redis: Redis, database: Any, settings: Settings, sink: str) -> None:
    """One worker process a driver times: start-up checks, ``ready``; a line on stdin
    starts it, the next one stops it. ``sink`` ``none``: ``no_mongodb``."""
    worker = Worker(redis, database, settings)
    if sink == "none":
        worker.sink.write = no_mongodb  # type: ignore[method-assign]
    await worker.startup_checks()
    stdin = anyio.wrap_file(sys.stdin)
    print("ready", flush=True)
    await stdin.readline()
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        await stdin.readline()
        worker.request_stop()


async def wait_ready(procs: Sequence[Process], seconds: float) -> None:
    """Wait for every gated worker's ``ready`` (each within ``seconds``)."""
    for proc in procs:
        assert proc.stdout is not None
        with anyio.fail_after(seconds):
            line = await proc.stdout.receive()
        if not line.startswith(b"ready"):
            raise RuntimeError(f"a gated worker did not start: {line!r}")


async def tell(procs: Sequence[Process], line: bytes) -> None:
    """Send ``go`` or ``stop`` to every gated worker."""
    for proc in procs:
        assert proc.stdin is not None
        await proc.stdin.send(line + b"\n")


async def reap(procs: Sequence[Process]) -> None:
    """Stop every gated worker (``stop``, ignored by one already stopping), killing any
    still running after 30 s."""
    for proc in procs:
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await proc.stdin.send(b"stop\n")
    for proc in procs:
        with anyio.move_on_after(30):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def main(redis_url: str, mongo_url: str, prefix: str, sink: str) -> None:
    configure_logging("error")
    redis = Redis.from_url(redis_url)
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    settings = Settings(prefix=prefix, metrics_address=None)
    await run_gated(redis, client["ceiling"], settings, "none" if sink != "mongodb" else sink)
    await redis.aclose()
    await client.close()


if __name__ == "__main__":
    sink = sys.argv[4] if len(sys.argv) > 4 else "none"
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], sink)
