"""Server processes for tests: the package's embedded servers, plus the external-mongod switch."""

from __future__ import annotations

import os
from collections.abc import Callable

from redis.asyncio import Redis

from tests.support.waiting import wait_until
from writebehind.embedded.servers import RedisServer, SecantusServer, ServerProcess, free_port

__all__ = [
    "RedisServer",
    "SecantusServer",
    "ServerProcess",
    "external_mongo_url",
    "free_port",
    "replica_of",
    "replica_online",
]


def external_mongo_url() -> str | None:
    """``WRITEBEHIND_TEST_MONGO_URL`` points the suite at a real ``mongod``."""
    return os.environ.get("WRITEBEHIND_TEST_MONGO_URL") or None


async def replica_online(primary: Redis) -> bool:
    """Whether ``primary`` has one replica attached and streaming (for ``wait_until``)."""
    info = await primary.info("replication")
    return int(info.get("connected_slaves", 0)) == 1 and "online" in str(info.get("slave0"))


async def replica_of(
    redis_factory: Callable[..., RedisServer], primary: RedisServer
) -> RedisServer:
    """A new ``redis-server`` replicating ``primary``, returned once it is online."""
    replica = redis_factory("--replicaof", "127.0.0.1", str(primary.port))
    client = Redis.from_url(primary.url)
    try:
        await wait_until(lambda: replica_online(client), message="the replica to be online")
    finally:
        await client.aclose()
    return replica
