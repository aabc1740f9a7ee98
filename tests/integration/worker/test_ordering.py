"""Newest wins per document, with many producers and several workers racing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.producer import produce
from tests.support.servers import RedisServer
from tests.support.streams import dead_letters, drained
from tests.support.waiting import wait_until
from writebehind import Version, WriteBehind
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]
DOCS = 50
IN_PROCESS = 400
PER_PROCESS = 600


async def test_three_workers_end_at_the_newest_acknowledged_version_of_each_document(
    wb: WriteBehind,
    start_worker: Any,
    redis_server: RedisServer,
    mongo_url: str,
    database_name: str,
    mongo_db: Any,
    redis: Redis,
) -> None:
    # Small batches so the workers interleave on every partition.
    workers: list[Worker] = [await start_worker(batch_size=16) for _ in range(3)]
    acked: list[dict[str, Any]] = []

    async def in_process(n: int) -> None:
        acked.extend(await produce(wb, f"task{n}", IN_PROCESS, DOCS, seed=n))

    async def subprocess(n: int) -> None:
        command = [
            sys.executable, "-m", "tests.support.producer", redis_server.url, mongo_url,
            database_name, TEST_PREFIX, str(TEST_PARTITIONS), f"proc{n}", str(PER_PROCESS),
            str(DOCS), str(100 + n),
        ]  # fmt: skip
        result = await anyio.run_process(command, cwd=ROOT)
        acked.extend(json.loads(line) for line in result.stdout.decode().splitlines())

    async with anyio.create_task_group() as tg:
        for n in range(2):
            tg.start_soon(subprocess, n)
        for n in range(3):
            tg.start_soon(in_process, n)
    assert len(acked) == 3 * IN_PROCESS + 2 * PER_PROCESS
    # Versions are stream ids: unique within a partition.
    partition = wb.keys.partition_of
    assert len({(partition("users", a["doc"]), *a["v"]) for a in acked}) == len(acked)

    newest: dict[str, dict[str, Any]] = {}
    for write in acked:
        current = newest.get(write["doc"])
        if current is None or Version.from_pair(write["v"]) > Version.from_pair(current["v"]):
            newest[write["doc"]] = write

    async def stored() -> dict[str, Any]:
        return {doc["_id"]: doc async for doc in mongo_db["users"].find()}

    async def converged() -> bool:
        docs = await stored()
        return all(
            doc_id in docs and docs[doc_id]["_wb"]["v"] == write["v"]
            for doc_id, write in newest.items()
        )

    await wait_until(converged, message="MongoDB at the newest versions", timeout=60)
    docs = await stored()
    assert set(docs) == set(newest)
    for doc_id, write in newest.items():
        doc = docs[doc_id]
        if write["op"] == "del":
            assert set(doc) == {"_id", "_wb"}
            assert doc["_wb"]["deleted"] is True
            assert await wb.collection("users").get(doc_id) is None
        else:
            assert doc == {"_id": doc_id, **write["body"], "_wb": {"v": write["v"]}}
            assert await wb.collection("users").get(doc_id) == {"_id": doc_id, **write["body"]}

    await wait_until(lambda: drained(redis, wb.keys), message="everything acknowledged")
    assert await dead_letters(redis, wb.keys) == []
    assert sum(w.stats.persisted for w in workers) >= len(acked)
    # The work really was shared.
    assert all(w.stats.batches > 0 for w in workers)
