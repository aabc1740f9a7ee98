"""Cancelled calls give their Redis connections back, whatever point they were cancelled at.

A bounded pool, a proxy that delays every reply, and a thousand calls of every
public method cancelled at random moments: afterwards no connection is in use
and every method still works, and the cancelled calls' connections went back
to the pool intact rather than closed (their commands ran to their end).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.proxy import Proxy
from tests.support.servers import RedisServer
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.version import Version
from writebehind.errors import NotReplicated, PersistTimeout
from writebehind.sdk.collection import Collection
from writebehind.sdk.computing.cached import CachedFunction

pytestmark = pytest.mark.anyio

POOL = 8
CANCELLATIONS = 1000
LANES = 2


def methods(
    wb: WriteBehind, users: Collection, profile: CachedFunction[[int], Any], n: int
) -> list[Callable[[], Awaitable[Any]]]:
    """Every public call of the SDK that reaches Redis; ``profile`` is a cached function."""
    doc_id = f"u{n % 20}"
    return [
        lambda: users.set(doc_id, {"n": n}),
        lambda: users.delete(doc_id),
        lambda: users.patch(doc_id, {"p": n}),
        lambda: users.modify(doc_id, lambda d: {**(d or {}), "m": n}),
        lambda: users.set_many([(doc_id, {"n": n}), (f"x{n % 7}", {"n": n})]),
        lambda: users.get(doc_id),
        lambda: users.get(f"never-{n}"),
        lambda: users.wait_persisted(Version(1, n).for_document("users", doc_id), timeout=0.5),
        lambda: users.get_many([doc_id, f"never-{n}", f"x{n % 7}"]),
        lambda: users.warm([f"w{n % 30}", doc_id]),
        lambda: users.version(doc_id),
        lambda: users.version(f"never-{n}"),
        lambda: users.get_versioned(doc_id),
        lambda: profile(n % 10),
        lambda: profile.validated(n % 10),
        lambda: profile.refresh(n % 10),
        lambda: profile.invalidate(n % 10),
        lambda: wb.invalidate_tags(f"t{n % 3}"),
        lambda: wb.bump_namespace("profiles"),
    ]


def cached_profile(wb: WriteBehind, users: Collection) -> CachedFunction[[int], Any]:
    """A cached function reading a document, tagged, in its own namespace."""

    @wb.cached(
        ttl=60,
        tags=["t{n}"],
        namespace="profiles",
        depends_on=lambda n: [("users", f"u{n}")],
    )
    async def profile(n: int) -> Any:
        return await users.get(f"u{n}")

    return profile


def in_use(wb: WriteBehind) -> int:
    return len(wb.redis.connection_pool._in_use_connections)  # type: ignore[attr-defined]


@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["plain", "wait_replicas"])
async def test_random_cancellations_leak_no_connection(
    redis_server: RedisServer,
    redis: Redis,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
    wait_replicas: int,
) -> None:
    rng = random.Random(20261129 + wait_replicas)
    async with Proxy("127.0.0.1", redis_server.port, latency=0.005) as proxy:
        url = f"redis://{proxy.host}:{proxy.port}/0?max_connections={POOL}&timeout=5"
        # No replica is attached: WAIT answers 0 after wait_timeout, so these calls
        # raise NotReplicated unless cancelled first; the pipeline path is what counts.
        options = {"wait_replicas": wait_replicas, "wait_timeout": 0.05} if wait_replicas else {}
        async with WriteBehind(url, mongo_url, database_name, **options) as wb:
            users = wb.collection("users")
            profile = cached_profile(wb, users)
            await _ignore_not_replicated(lambda: users.set("u0", {"n": 0}))
            proxy.set_mode("latency")
            cancelled = 0
            opened = await _connections_opened(redis)

            async def lane(lane_no: int) -> None:
                nonlocal cancelled
                mine = 0
                for i in range(CANCELLATIONS * 4 // LANES):  # until this lane's share is cancelled
                    if mine >= CANCELLATIONS // LANES:
                        break
                    n = lane_no * 10_000 + i
                    call = rng.choice(methods(wb, users, profile, n))
                    with anyio.move_on_after(rng.uniform(0, 0.03)) as scope:
                        # NotReplicated and the like: not the point here.
                        with contextlib.suppress(Exception):
                            await call()
                    cancelled += scope.cancelled_caught
                    mine += scope.cancelled_caught

            async with anyio.create_task_group() as tg:
                for lane_no in range(LANES):
                    tg.start_soon(lane, lane_no)
            proxy.set_mode("pass")
            assert cancelled >= CANCELLATIONS
            # Back to the pool intact, not closed: a call cancelled on the wire runs to its
            # end (shielded). Closed instead (redis-py's own cancellation, which releases
            # its connection since 8.x), nearly every cancellation cost a new one: 954.
            assert await _connections_opened(redis) - opened <= 4 * POOL
            # A cancelled caller's call may still be finishing: give it its round trip.
            await wait_until(
                lambda: _true(in_use(wb) == 0), timeout=10, message="every connection back"
            )
            # Every method still works, the pool's POOL connections at once included.
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    for n in range(POOL * 2):
                        for call in methods(wb, users, profile, n):
                            tg.start_soon(_ignore_not_replicated, call)
            # wait_persisted's own deadline may end it in the middle of a Redis call,
            # which then finishes on its own (shielded): again, its round trip.
            await wait_until(
                lambda: _true(in_use(wb) == 0), timeout=10, message="every connection back"
            )
    await mongo_client.drop_database(database_name)


async def _connections_opened(redis: Redis) -> int:
    """Connections the Redis server has accepted since it started."""
    stats: Any = await redis.info("stats")
    return int(stats["total_connections_received"])


async def _true(value: bool) -> bool:
    return value


async def _ignore_not_replicated(call: Callable[[], Awaitable[Any]]) -> None:
    # No replica is attached: with wait_replicas=1 every write says so; no worker runs, so
    # wait_persisted times out. Neither is the point: the calls must be made and end.
    with contextlib.suppress(NotReplicated, PersistTimeout):
        await call()


@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["set_many", "set_wait_replicas"])
async def test_calls_cancelled_on_the_wire_give_their_connections_back(
    redis_server: RedisServer,
    redis: Redis,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
    wait_replicas: int,
) -> None:
    async with Proxy("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://{proxy.host}:{proxy.port}/0?max_connections={POOL}&timeout=5"
        options = {"wait_replicas": wait_replicas, "wait_timeout": 0.05} if wait_replicas else {}
        async with WriteBehind(url, mongo_url, database_name, **options) as wb:
            users = wb.collection("users")
            proxy.set_mode("blackhole")  # requests arrive, replies never do
            for n in range(POOL):
                with anyio.move_on_after(0.2):
                    if wait_replicas:
                        await users.set(f"u{n}", {"n": n})
                    else:
                        await users.set_many([(f"u{n}", {"n": n})])
            proxy.set_mode("pass")  # closes the blackholed connections
            await wait_until(
                lambda: _true(in_use(wb) == 0), timeout=10, message="every connection back"
            )
            with anyio.fail_after(10):
                await _ignore_not_replicated(lambda: users.set_many([("after", {"ok": 1})]))
    await mongo_client.drop_database(database_name)
