"""The SDK's own time limits hold while MongoDB is frozen (``SIGSTOP``): nothing waits
for PyMongo's 30 s server selection when the caller asked for less."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.servers import SecantusServer
from writebehind import WriteBehind
from writebehind import errors as e

pytestmark = pytest.mark.anyio


@pytest.fixture
async def frozen_mongo_wb(
    redis: Redis, mongo_factory: Callable[[], SecantusServer]
) -> AsyncIterator[tuple[WriteBehind, SecantusServer]]:
    server = mongo_factory()
    client: AsyncMongoClient[Any] = AsyncMongoClient(server.url)
    try:
        async with WriteBehind(
            redis=redis, mongo=client["frozen"], prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
        ) as wb:
            yield wb, server
    finally:
        server.resume()
        await client.close()


async def test_wait_persisted_keeps_its_timeout_while_mongodb_is_frozen(
    frozen_mongo_wb: tuple[WriteBehind, SecantusServer],
) -> None:
    wb, server = frozen_mongo_wb
    users = wb.collection("users")
    version = await users.set("u1", {"n": 1})
    server.pause()
    # timeout=0.5 s; without the bound, find_one waits out server selection (30 s).
    with anyio.fail_after(10), pytest.raises(e.PersistTimeout):
        await users.wait_persisted(version, timeout=0.5)
