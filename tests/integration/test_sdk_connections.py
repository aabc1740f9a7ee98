"""URL-made clients under bursts and blips: calls queue for a connection and retry a reset.

redis-py 8's default pool refuses the 101st concurrent call (``MaxConnectionsError``)
and gives ``from_url`` clients no retries; the SDK's clients queue (bounded, then
``ConnectionPoolExhausted``) and retry a dropped connection.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from redis.asyncio import ConnectionPool, Redis

from tests.support.proxy import Proxy
from tests.support.servers import RedisServer
from writebehind import ReadPolicy, WriteBehind
from writebehind import errors as e
from writebehind.core.redis_client import POOL_SIZE

pytestmark = pytest.mark.anyio


async def test_a_burst_queues_for_connections(
    redis_server: RedisServer,
    redis: Redis,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
) -> None:
    results: list[Any] = []
    # What is tested is queueing for a connection, not the deadline: 300 tasks on a
    # loaded 2-core machine can take longer than the default 0.5 s for one call.
    reads = ReadPolicy(redis_timeout=5.0)
    async with WriteBehind(redis_server.url, mongo_url, database_name, reads=reads) as wb:
        users = wb.collection("users")

        async def writer(n: int) -> None:
            for i in range(5):
                try:
                    results.append(await users.set(f"u{n}", {"i": i}))
                    results.append(await users.get(f"u{n}"))
                    results.append(await users.set_many([(f"m{n}", {"i": i})]))
                except Exception as exc:
                    results.append(exc)

        async with anyio.create_task_group() as tg:
            for n in range(300):
                tg.start_soon(writer, n)
        pool = wb.redis.connection_pool
        opened = len(pool._in_use_connections) + len(pool._available_connections)  # type: ignore[attr-defined]
    await mongo_client.drop_database(database_name)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} calls failed, first: {failures[0]!r}"
    assert len(results) == 300 * 5 * 3
    assert opened <= POOL_SIZE


async def test_a_pool_that_stays_full_raises_a_typed_error(
    redis_server: RedisServer,
    redis: Redis,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
) -> None:
    async with Proxy("127.0.0.1", redis_server.port, latency=1.0) as proxy:
        url = f"redis://{proxy.host}:{proxy.port}/0?max_connections=1&timeout=0.2"
        async with WriteBehind(url, mongo_url, database_name) as wb:
            users = wb.collection("users")
            proxy.set_mode("latency")
            outcomes: list[Any] = []

            async def write(n: int) -> None:
                try:
                    outcomes.append(await users.set(f"u{n}", {"n": n}))
                except Exception as exc:
                    outcomes.append(exc)

            async with anyio.create_task_group() as tg:
                for n in range(3):
                    tg.start_soon(write, n)
            proxy.set_mode("pass")
    await mongo_client.drop_database(database_name)
    refused = [o for o in outcomes if isinstance(o, e.ConnectionPoolExhausted)]
    assert len(refused) == 2, outcomes
    assert len(outcomes) == 3


async def test_a_full_default_pool_raises_the_same_typed_error(
    redis_server: RedisServer, mongo_db: Any
) -> None:
    async with Proxy("127.0.0.1", redis_server.port, latency=0.5) as proxy:
        pool = ConnectionPool.from_url(f"redis://{proxy.host}:{proxy.port}/0", max_connections=1)
        client = Redis.from_pool(pool)
        try:
            wb = WriteBehind(redis=client, mongo=mongo_db)
            await wb.ensure_ready()
            proxy.set_mode("latency")
            outcomes: list[Any] = []

            async def read(n: int) -> None:
                try:
                    outcomes.append(await wb.collection("users").get(f"u{n}"))
                except Exception as exc:
                    outcomes.append(exc)

            async with anyio.create_task_group() as tg:
                for n in range(3):
                    tg.start_soon(read, n)
            proxy.set_mode("pass")
        finally:
            await client.aclose()
    assert sum(isinstance(o, e.ConnectionPoolExhausted) for o in outcomes) == 2, outcomes


async def test_a_dropped_connection_is_retried(
    redis_server: RedisServer,
    redis: Redis,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
) -> None:
    async with Proxy("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://{proxy.host}:{proxy.port}/0"
        async with WriteBehind(url, mongo_url, database_name) as wb:
            users = wb.collection("users")
            await users.set("u1", {"n": 1})
            for call in (
                lambda: users.set("u1", {"n": 2}),
                lambda: users.get("u1"),
                lambda: users.set_many([("u2", {"n": 1})]),
            ):
                proxy.close_connections()  # every pooled connection is now dead
                await call()
            assert await users.get("u1") == {"_id": "u1", "n": 2}
            # Nothing written twice: three writes, three records.
            assert sum([await wb.redis.xlen(s) for s in wb.keys.streams()]) == 3
    await mongo_client.drop_database(database_name)
