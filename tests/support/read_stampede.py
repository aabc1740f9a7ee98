"""One application process of the stampede test: N concurrent ``get``s of one cold document.

    python -m tests.support.read_stampede REDIS_URL MONGO_URL DATABASE DOC_ID N APPNAME

Connects, prints ``ready``, waits for a line on stdin, runs the gets at once,
and prints one JSON line: the MongoDB ``find``s it sent (a command listener
counts them) and the distinct answers.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
from pymongo import AsyncMongoClient

from tests.support.reads import FindCounter
from writebehind import WriteBehind


async def main(argv: list[str]) -> None:
    redis_url, mongo_url, database, doc_id, n, app = argv
    counter = FindCounter()
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", appname=app, event_listeners=[counter]
    )
    try:
        await mongo.admin.command("ping")
        async with WriteBehind(
            redis_url=redis_url, mongo=mongo[database], prefix="t", partitions=4
        ) as wb:
            users = wb.collection("users")

            # Open the connections the gets will use now, so that what the test
            # counts is the gets' commands, not connection set-up (HELLO, PING).
            async def ping() -> None:
                await wb.redis.ping()

            async with anyio.create_task_group() as tg:
                for _ in range(int(n)):
                    tg.start_soon(ping)
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)
            answers: list[Any] = []

            async def one() -> None:
                answers.append(await users.get(doc_id))

            async with anyio.create_task_group() as tg:
                for _ in range(int(n)):
                    tg.start_soon(one)
        distinct = sorted({json.dumps(a, sort_keys=True) for a in answers})
        print(json.dumps({"finds": counter.count("users"), "answers": distinct, "n": len(answers)}))
    finally:
        await mongo.close()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
