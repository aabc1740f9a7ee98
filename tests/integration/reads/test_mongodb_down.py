"""A MongoDB that stops answering costs a read ``mongo_timeout``, never a hang.

PyMongo sets no socket timeout: against a frozen server (SIGSTOP: connections
stay open, nothing answers) a ``find`` waits for ever. Every read the SDK must
make from MongoDB (a miss and its fill, ``get_many``, the read of a ``modify``)
raises ``DatabaseUnavailable`` after the read policy's ``mongo_timeout``
instead, and works again once MongoDB answers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import DatabaseUnavailable
from writebehind.embedded.servers import SecantusServer

pytestmark = pytest.mark.anyio

MONGO_TIMEOUT = 0.5
WITHIN = 5.0  # far under PyMongo's 30 s server selection, and under "for ever"


@pytest.fixture
async def frozen_later(
    mongo_factory: Callable[[], SecantusServer],
) -> AsyncIterator[tuple[SecantusServer, Any]]:
    server = mongo_factory()
    client: AsyncMongoClient[Any] = AsyncMongoClient(server.url, serverMonitoringMode="poll")
    try:
        db = client["frozen"]
        await db["users"].insert_one({"_id": "m", "n": 1, "_wb": {"v": [1, 0]}})
        yield server, db
    finally:
        server.resume()
        await client.close()


READS: dict[str, Callable[[Any], Awaitable[Any]]] = {
    "get": lambda users: users.get("m"),
    "get_many": lambda users: users.get_many(["m", "x"]),
    "modify": lambda users: users.modify("m", lambda d: {**(d or {}), "n": 2}),
}


@pytest.mark.parametrize("read", list(READS))
async def test_a_read_gives_up_after_mongo_timeout_and_works_again(
    read: str, redis: Redis, frozen_later: tuple[SecantusServer, Any]
) -> None:
    server, db = frozen_later
    policy = ReadPolicy(mongo_timeout=MONGO_TIMEOUT)
    async with WriteBehind(
        redis=redis, mongo=db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS, reads=policy
    ) as wb:
        users = wb.collection("users")
        server.pause()
        try:
            began = time.monotonic()
            with pytest.raises(DatabaseUnavailable, match="did not answer"):
                await READS[read](users)
            took = time.monotonic() - began
        finally:
            server.resume()
        assert MONGO_TIMEOUT * 0.9 <= took < WITHIN
        assert await users.get("m") == {"_id": "m", "n": 1}
        assert await redis.exists(wb.keys.cache(wb.keys.partition_of("users", "m"), "users", "m"))


def test_mongo_timeout_must_be_a_positive_number_of_seconds() -> None:
    from writebehind.core.errors import ConfigurationError

    for bad in (0, -1, float("nan"), "5", True):
        with pytest.raises(ConfigurationError, match="mongo_timeout"):
            ReadPolicy(mongo_timeout=bad)  # type: ignore[arg-type]
