"""A producer process for cross-process tests: patches distinct fields of one document.

python -m tests.support.patcher REDIS_URL MONGO_URL DATABASE PREFIX DOC_ID NAME COUNT
"""

from __future__ import annotations

import sys

import anyio

from writebehind import WriteBehind


async def main(argv: list[str]) -> None:
    redis_url, mongo_url, database, prefix, doc_id, name, count = argv
    async with WriteBehind(redis_url, mongo_url, database, prefix=prefix, partitions=4) as wb:
        users = wb.collection("users")
        async with anyio.create_task_group() as tg:
            for i in range(int(count)):
                tg.start_soon(users.patch, doc_id, {f"{name}_{i}": i})


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
