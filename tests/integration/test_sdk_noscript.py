"""A pipeline re-sent after the script cache was emptied still reports writes that were made.

The write script runs, its reply is lost, the script cache is emptied (a
restart with AOF, a failover, ``SCRIPT FLUSH``) and the client re-sends on a
new connection: Redis answers ``NOSCRIPT``. redis-py loads scripts only before
a pipeline's first attempt, so without help ``set_many`` and ``set`` with
``wait_replicas`` reported these writes as refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.proxy import Proxy
from tests.support.seeding import seed_all
from tests.support.servers import RedisServer
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.script_calls import ScriptCall, run_scripts
from writebehind.core.version import Version
from writebehind.errors import NotReplicated

pytestmark = pytest.mark.anyio


async def records(redis: Redis, wb: WriteBehind) -> int:
    return sum([await redis.xlen(s) for s in wb.keys.streams()])


CALLS: dict[str, Callable[[WriteBehind], Awaitable[Any]]] = {
    "set_many": lambda wb: wb.collection("users").set_many([("a", {"n": 1}), ("b", {"n": 2})]),
    "set_wait_replicas": lambda wb: wb.collection("users").set("a", {"n": 1}),
}


@pytest.mark.parametrize("name", list(CALLS))
async def test_a_resent_pipeline_survives_an_emptied_script_cache(
    redis_server: RedisServer,
    redis: Redis,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
    name: str,
) -> None:
    writes = 2 if name == "set_many" else 1
    options = {"wait_replicas": 1, "wait_timeout": 0.05} if name == "set_wait_replicas" else {}
    outcome: list[Any] = []
    async with Proxy("127.0.0.1", redis_server.port, forward_in_blackhole=True) as proxy:
        url = f"redis://{proxy.host}:{proxy.port}/0?socket_timeout=2"
        async with WriteBehind(url, mongo_url, database_name, **options) as wb:
            await wb.redis.script_load(wb.scripts.write.script)  # loaded, as in a running app
            await seed_all(wb)  # so the first EVALSHA is the write, not a refusal
            before = await records(redis, wb)

            def lose_reply(request: bytes) -> None:
                if b"EVALSHA" in request.upper():  # this one arrives; its reply is lost
                    proxy.on_request = None
                    proxy.set_mode("blackhole")

            proxy.on_request = lose_reply

            async def call() -> None:
                try:
                    outcome.append(await CALLS[name](wb))
                except NotReplicated as exc:  # no replica attached: the writes were made
                    outcome.append(exc.versions)
                except Exception as exc:
                    outcome.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await wait_until(lambda: _made(redis, wb, before + writes), message="writes made")
                await redis.script_flush()
                proxy.set_mode("pass")  # drops the connection: the client re-sends
            made = await records(redis, wb)
    await mongo_client.drop_database(database_name)
    (result,) = outcome
    assert not isinstance(result, BaseException), f"{name} reported {result!r}"
    versions = result if isinstance(result, list) else [result]
    assert all(isinstance(v, Version) for v in versions) and len(versions) == writes
    assert made == before + writes  # the re-sent calls returned their first results


async def _made(redis: Redis, wb: WriteBehind, wanted: int) -> bool:
    return await records(redis, wb) >= wanted


async def test_run_scripts_loads_what_is_missing_and_resends_only_that(redis: Redis) -> None:
    incr = redis.register_script("return redis.call('INCR', KEYS[1])")
    await redis.script_flush()
    replies, tails = await run_scripts(
        redis, [ScriptCall(incr, ["k1"], []), ScriptCall(incr, ["k2"], [])], trailing=("PING",)
    )
    assert replies == [1, 1]
    assert len(tails) == 2  # sent once, refused; loaded, then sent again
    assert await redis.mget("k1", "k2") == [b"1", b"1"]
