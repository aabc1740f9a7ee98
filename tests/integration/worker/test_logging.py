"""Worker log lines carry consumer, partition and batch context."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import structlog
from redis.asyncio import Redis

from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


async def test_dead_letter_log_names_consumer_partition_and_batch(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    if "processors" not in inspect.signature(structlog.testing.capture_logs).parameters:
        pytest.skip("structlog before 25.5: capture_logs cannot merge the context variables")
    await mongo_db.create_collection(
        "strict", validator={"$jsonSchema": {"bsonType": "object", "required": ["name"]}}
    )
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        worker = await start_worker(consumer="logged-consumer")
        await wb.collection("strict").set("x", {"no_name": True})
        await wait_until(
            lambda: _async(worker.stats.dead_lettered), message="the record to be dead-lettered"
        )
    [line] = [entry for entry in logs if entry["event"] == "record_dead_lettered"]
    assert line["consumer"] == "logged-consumer"
    assert line["partition"] == wb.keys.partition_of("strict", "x")
    assert isinstance(line["batch"], int)
    assert line["code"] == 121


async def _async(value: int) -> int:
    return value
