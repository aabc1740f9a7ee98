"""With ``wait_replicas``, what makes computed values stale is confirmed by replicas, as
writes are: a failover right after must not lose it (the promoted replica would serve
the values it made stale). Fewer replicas in time: ``NotReplicated``, never silence."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.computing import Gate
from tests.support.near_peer import wait_stopped
from tests.support.servers import RedisServer, replica_of
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import CacheUnavailable, NotReplicated
from writebehind.sdk.computing.keys import entry_key, namespace_generation, tag_generation

pytestmark = pytest.mark.anyio

WAIT_TIMEOUT = 0.5


async def test_invalidations_wait_for_replicas(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    primary = redis_factory()
    replica = await replica_of(redis_factory, primary)
    on_replica = Redis.from_url(replica.url)
    gate = Gate()
    try:
        async with WriteBehind(
            redis_url=primary.url,
            mongo=mongo_db,
            prefix="rw",
            partitions=4,
            wait_replicas=1,
            wait_timeout=WAIT_TIMEOUT,
        ) as wb:

            @wb.cached(ttl=300, key="p:{user}", tags=["user:{user}"], namespace="repl")
            async def profile(user: str) -> Any:
                return await gate.run()

            entry = entry_key("rw", "repl", "p:a")
            tag, namespace = tag_generation("rw", "user:a"), namespace_generation("rw", "repl")

            # A healthy replica: each returns once the replica has it (read at once, no polling).
            assert await profile("a") == "S1"
            await profile.invalidate("a")
            assert await on_replica.exists(entry) == 0
            assert await profile("a") == "S1"
            await wb.invalidate_tags("user:a")
            assert await on_replica.get(tag) == await wb.redis.get(tag)
            await wb.bump_namespace("repl")
            assert await on_replica.get(namespace) == await wb.redis.get(namespace)
            gate.state = "S2"
            assert await profile.refresh("a") == "S2"
            assert await on_replica.hget(entry, "b") == await wb.redis.hget(entry, "b")

            # A frozen replica: each is made on the primary and says it was not confirmed.
            replica.pause()
            assert replica.proc is not None
            await wait_stopped(replica.proc.pid)
            try:
                gate.state = "S3"
                calls: list[tuple[Callable[[], Awaitable[Any]], str]] = [
                    (lambda: profile.invalidate("a"), "an invalidation: made on the primary"),
                    (lambda: wb.invalidate_tags("user:a"), "an invalidation: made on the primary"),
                    (lambda: wb.bump_namespace("repl"), "an invalidation: made on the primary"),
                    (lambda: profile.refresh("a"), "a refresh's stored value: made on the primary"),
                ]
                for call, said in calls:
                    began = anyio.current_time()
                    with pytest.raises(NotReplicated) as info:
                        await call()
                    assert anyio.current_time() - began < WAIT_TIMEOUT + 1.0
                    assert (info.value.acknowledged, info.value.wanted) == (0, 1)
                    assert info.value.versions == [] and info.value.made
                    assert said in str(info.value)
            finally:
                replica.resume()
            gate.state = "S4"
            assert await profile("a") == "S3"  # made on the primary: refresh's value is stored
            assert gate.runs == 4
    finally:
        await on_replica.aclose()


async def test_a_journal_replicas_did_not_confirm_stays(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    """A journal applied while the replica is frozen is in effect on the primary only: it
    stays (the calls it covers computed fresh) until replicas confirm it."""
    primary = redis_factory()
    replica = await replica_of(redis_factory, primary)
    gate = Gate()
    async with WriteBehind(
        redis_url=primary.url,
        mongo=mongo_db,
        prefix="rj",
        partitions=4,
        wait_replicas=1,
        wait_timeout=WAIT_TIMEOUT,
        reads=ReadPolicy(redis_timeout=0.3, breaker_failures=3, breaker_cooldown=0.5),
        journal=True,
    ) as wb:

        @wb.cached(ttl=300, key="p:{user}", tags=["user:{user}"], namespace="repl")
        async def profile(user: str) -> Any:
            return await gate.run()

        assert await profile("a") == "S1"
        primary.pause()
        try:
            while not wb.redis_guard.breaker_open:  # so the invalidation is journaled
                await profile("x")
            await wb.invalidate_tags("user:a")
        finally:
            primary.resume()

        async def breaker_closed() -> bool:  # a document read: it applies no journal
            try:
                await wb.collection("users").get("nobody")
            except CacheUnavailable:
                return False
            return not wb.redis_guard.breaker_open

        await wait_until(breaker_closed, message="the breaker closed")
        assert wb.computed.journal is not None and len(wb.computed.journal) == 1
        replica.pause()
        assert replica.proc is not None
        await wait_stopped(replica.proc.pid)
        try:
            gate.state = "S2"
            with anyio.fail_after(10):
                assert not await wb.computed.settle()  # applied, not confirmed: kept
            assert len(wb.computed.journal) == 1
            assert (await profile.validated("a")).source == "fresh"
        finally:
            replica.resume()
        await wait_until(wb.computed.settle, message="the journal confirmed")
        gate.state = "S3"
        assert await profile("a") == "S3"
        assert (await profile.validated("a")).source == "redis"
