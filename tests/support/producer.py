"""A producer process for ordering tests: random sets and deletes over a set of documents.

    python -m tests.support.producer REDIS_URL MONGO_URL DATABASE PREFIX PARTITIONS \
        NAME COUNT DOCS SEED

Prints one JSON line per acknowledged write: ``{"doc", "v": [ms, seq], "op", "body"}``.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import anyio

from writebehind import WriteBehind

TASKS = 8


def make_write(
    rng: random.Random, name: str, i: int, docs: int
) -> tuple[str, dict[str, Any] | None]:
    """The i-th write of producer ``name``: a document id and a body (None deletes)."""
    doc_id = f"doc-{rng.randrange(docs)}"
    if rng.random() < 0.1:
        return doc_id, None
    return doc_id, {"by": name, "i": i, "pad": "x" * rng.randrange(200)}


async def produce(
    wb: WriteBehind, name: str, count: int, docs: int, seed: int
) -> list[dict[str, Any]]:
    """Write ``count`` records from ``TASKS`` concurrent tasks; return what was acknowledged."""
    users = wb.collection("users")
    acked: list[dict[str, Any]] = []

    async def task(t: int) -> None:
        rng = random.Random(f"{seed}-{t}")
        for i in range(t, count, TASKS):
            doc_id, body = make_write(rng, name, i, docs)
            if body is None:
                version = await users.delete(doc_id)
            else:
                version = await users.set(doc_id, body)
            acked.append(
                {"doc": doc_id, "v": version.as_pair(), "op": "del" if body is None else "set",
                 "body": body}
            )  # fmt: skip

    async with anyio.create_task_group() as tg:
        for t in range(TASKS):
            tg.start_soon(task, t)
    return acked


async def main(argv: list[str]) -> None:
    redis_url, mongo_url, database, prefix, partitions, name, count, docs, seed = argv
    async with WriteBehind(
        redis_url, mongo_url, database, prefix=prefix, partitions=int(partitions)
    ) as wb:
        acked = await produce(wb, name, int(count), int(docs), int(seed))
    sys.stdout.write("".join(json.dumps(a) + "\n" for a in acked))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
