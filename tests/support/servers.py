"""Server processes for tests: the package's embedded servers, plus the external-mongod switch."""

from __future__ import annotations

import os

from redis.asyncio import Redis

from writebehind.embedded.servers import RedisServer, SecantusServer, ServerProcess, free_port

__all__ = [
    "RedisServer",
    "SecantusServer",
    "ServerProcess",
    "external_mongo_url",
    "free_port",
    "replica_online",
]


def external_mongo_url() -> str | None:
    """``WRITEBEHIND_TEST_MONGO_URL`` points the suite at a real ``mongod``."""
    return os.environ.get("WRITEBEHIND_TEST_MONGO_URL") or None


async def replica_online(primary: Redis) -> bool:
    """Whether ``primary`` has one replica attached and streaming (for ``wait_until``)."""
    info = await primary.info("replication")
    return int(info.get("connected_slaves", 0)) == 1 and "online" in str(info.get("slave0"))
