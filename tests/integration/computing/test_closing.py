"""``aclose()`` while computations run: they are cancelled, their leases given back, and
every call waiting for them gets ``ClientClosed``, as after ``aclose()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.computing import Gate
from tests.support.servers import SecantusServer
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import ClientClosed
from writebehind.sdk.computing.keys import entry_key, lease_of

pytestmark = pytest.mark.anyio


async def test_aclose_gives_waiting_calls_client_closed(redis: Redis, mongo_db: Any) -> None:
    gate = Gate()
    gate.block()
    outcomes: list[BaseException | Any] = []
    async with WriteBehind(redis=redis, mongo=mongo_db, prefix="cl", partitions=4) as wb:

        @wb.cached(ttl=300, key="c:{x}", namespace="closing")
        async def f(x: str) -> Any:
            return await gate.run()

        users = wb.collection("users")

        async def call() -> None:
            try:
                outcomes.append(await f("a"))
            except BaseException as exc:
                outcomes.append(exc)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(3):  # one computation, three callers
                    tg.start_soon(call)
                await gate.started.wait()
                await wb.aclose()
        assert len(outcomes) == 3
        assert all(isinstance(o, ClientClosed) for o in outcomes), outcomes
        assert gate.runs == 1
        with pytest.raises(ClientClosed):
            await f("a")
        with pytest.raises(ClientClosed):
            await users.get("ada")
    entry = entry_key("cl", "closing", "c:a")
    assert await redis.exists(entry, lease_of(entry)) == 0  # lease given back, nothing stored


async def test_aclose_gives_a_waiting_document_read_client_closed(
    redis: Redis, mongo_factory: Callable[[], SecantusServer]
) -> None:
    """The same for a document read waiting for its load (the flights are shared)."""
    server = mongo_factory()
    client: AsyncMongoClient[Any] = AsyncMongoClient(server.url)
    outcomes: list[BaseException | Any] = []
    try:
        async with WriteBehind(
            redis=redis,
            mongo=client["closing"],
            prefix="cl2",
            partitions=4,
            reads=ReadPolicy(mongo_timeout=30),
        ) as wb:
            users = wb.collection("users")

            async def read() -> None:
                try:
                    outcomes.append(await users.get("ada"))
                except BaseException as exc:
                    outcomes.append(exc)

            server.pause()
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(read)
                    await wait_until(lambda: _in_flight(wb), message="the load in flight")
                    await wb.aclose()
        assert len(outcomes) == 1 and isinstance(outcomes[0], ClientClosed), outcomes
    finally:
        server.resume()
        await client.close()


async def _in_flight(wb: WriteBehind) -> bool:
    return wb.read_flights.in_flight > 0
