"""Transient MongoDB failures are waited out and retried, never dead-lettered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.servers import RedisServer
from tests.support.streams import dead_letters, fail_point, pending_total, running_worker
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio

# PyMongo retries a retryable write once by itself, so each worker attempt may
# consume two failures; four make sure the worker's own retry path runs.
TIMES = 4

TRANSIENT_FAILURES = {
    "shutdown_with_retryable_label": {
        "failCommands": ["update"],
        "errorCode": 91,
        "errorLabels": ["RetryableWriteError"],
    },
    "repl_state_change_without_labels": {"failCommands": ["update"], "errorCode": 11602},
    "connection_closed": {"failCommands": ["update"], "closeConnection": True},
    "write_concern_error": {
        "failCommands": ["update"],
        "writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"},
    },
}


@pytest.fixture
async def polled_db(mongo_url: str, database_name: str) -> AsyncIterator[Any]:
    """The test database through a client that polls the server's state.

    After a not-primary or shutdown error PyMongo forgets the server and waits
    for its monitor to see it again. SecantusDB does not answer the streaming
    monitor early, so that wait would be a full heartbeat (10 s) per failure;
    polling brings it down to 0.5 s. The worker's behaviour is the same.
    """
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", serverMonitoringMode="poll"
    )
    try:
        yield client[database_name]
    finally:
        await client.close()


@pytest.mark.parametrize("failure", list(TRANSIENT_FAILURES), ids=list(TRANSIENT_FAILURES))
async def test_transient_failure_is_retried_until_everything_lands(
    failure: str,
    wb: WriteBehind,
    redis_server: RedisServer,
    polled_db: Any,
    mongo_db: Any,
    mongo_client: Any,
    redis: Redis,
) -> None:
    users = wb.collection("users")
    expected = {f"u{i}": {"n": i, "who": failure} for i in range(12)}
    versions = [await users.set(doc_id, doc) for doc_id, doc in expected.items()]
    versions.append(await users.delete("u0"))
    del expected["u0"]

    async with (
        fail_point(mongo_client, {"times": TIMES}, TRANSIENT_FAILURES[failure]),
        running_worker(redis_server.url, polled_db) as worker,
    ):
        for version in versions:
            await users.wait_persisted(version, timeout=30)
        await wait_until(
            lambda: _no_pending(redis, wb), message="every record acknowledged", timeout=10
        )

    assert worker.stats.retried > 0
    assert worker.stats.dead_lettered == 0
    assert await dead_letters(redis, wb.keys) == []
    stored = {d["_id"]: d async for d in mongo_db["users"].find()}
    assert stored["u0"]["_wb"]["deleted"] is True
    for doc_id, doc in expected.items():
        assert {k: v for k, v in stored[doc_id].items() if k != "_wb"} == {"_id": doc_id, **doc}


async def _no_pending(redis: Redis, wb: WriteBehind) -> bool:
    return await pending_total(redis, wb.keys) == 0
