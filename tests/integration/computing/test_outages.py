"""Cached computations without Redis: computed fresh, invalidations refused or journaled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.computing import Gate, computed_count
from tests.support.servers import RedisServer
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import CacheUnavailable
from writebehind.sdk.computing.cached import CachedFunction
from writebehind.sdk.computing.keys import channel_of, entry_key

pytestmark = pytest.mark.anyio

POLICY = ReadPolicy(redis_timeout=0.3, breaker_failures=3, breaker_cooldown=0.5)


def _profile(wb: WriteBehind, gate: Gate) -> CachedFunction[[str], Any]:
    @wb.cached(ttl=300, key="p:{user_id}", tags=["user:{user_id}"], namespace="outage")
    async def profile(user_id: str) -> Any:
        return await gate.run()

    return profile


def _depth(prefix: str) -> float:
    labels = {"prefix": prefix}
    return REGISTRY.get_sample_value("writebehind_sdk_computed_journal_depth", labels) or 0.0


async def test_without_redis_computed_fresh_and_invalidations_refused(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    server = redis_factory()
    gate = Gate()
    async with WriteBehind(
        redis_url=server.url, mongo=mongo_db, prefix="o1", partitions=4, reads=POLICY
    ) as wb:
        profile = _profile(wb, gate)
        assert await profile("a") == "S1"
        server.pause()
        try:
            for invalidation in (
                lambda: profile.invalidate("a"),
                lambda: wb.invalidate_tags("user:a"),
                lambda: wb.bump_namespace("outage"),
            ):
                # Sent to a frozen Redis, which may run it once it wakes (written None);
                # refused by the open breaker (written False): either way, never "done".
                with pytest.raises(CacheUnavailable):
                    await invalidation()
            degraded = computed_count(profile.name, "degraded")
            gate.state = "S2"
            assert await profile("a") == "S2"  # computed, not stored
            assert (await profile.validated("a")).source == "fresh"
            assert computed_count(profile.name, "degraded") - degraded == 2
        finally:
            server.resume()

        async def served_by_redis() -> bool:
            return (await profile.validated("a")).source == "redis"

        await wait_until(served_by_redis, message="served from Redis again")
        runs = gate.runs  # (each poll under the open breaker computed fresh)
        assert await profile("a") == "S2"
        assert gate.runs == runs


async def test_journaled_invalidations_are_applied_before_redis_serves_again(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    server = redis_factory()
    gate = Gate()
    async with WriteBehind(
        redis_url=server.url,
        mongo=mongo_db,
        prefix="o2",
        partitions=4,
        reads=POLICY,
        journal=True,
    ) as wb:
        profile = _profile(wb, gate)
        for user in ("a", "b", "c"):
            assert await profile(user) == "S1"
        server.pause()
        try:
            while not wb.redis_guard.breaker_open:  # so the invalidations are never sent
                await profile("x")
            await profile.invalidate("a")  # kept, not raised
            await wb.invalidate_tags("user:b")
            assert _depth("o2") == 2
            gate.state = "S2"
            journaled = computed_count(profile.name, "journaled")
            assert await profile("a") == "S2"
            assert await profile("b") == "S2"
            assert computed_count(profile.name, "journaled") - journaled == 2
            assert (await profile.validated("c")).source == "fresh"  # Redis is away
        finally:
            server.resume()
        gate.state = "S3"

        async def served_by_redis() -> bool:
            return (await profile.validated("c")).source == "redis"

        await wait_until(served_by_redis, message="c served from Redis again")
        # Redis served a computed value: the journal was applied first.
        assert _depth("o2") == 0
        assert wb.computed.journal is not None and wb.computed.journal.empty
        assert await profile("c") == "S1"  # not invalidated: still the old value
        assert await profile("a") == "S3"
        assert await profile("b") == "S3"


async def test_an_overflowed_journal_makes_everything_fresh_then_stale(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    server = redis_factory()
    gate = Gate()
    async with WriteBehind(
        redis_url=server.url, mongo=mongo_db, prefix="o3", partitions=4, reads=POLICY, journal=2
    ) as wb:
        profile = _profile(wb, gate)
        assert await profile("c") == "S1"
        server.pause()
        try:
            for tag in ("x", "y", "z"):  # the third overflows the journal
                await wb.invalidate_tags(tag)
            assert wb.computed.journal is not None and wb.computed.journal.overflowed
            gate.state = "S2"
            journaled = computed_count(profile.name, "journaled")
            assert await profile("c") == "S2"  # covered: everything is
            assert computed_count(profile.name, "journaled") - journaled == 1
        finally:
            server.resume()
        gate.state = "S3"

        async def applied() -> bool:
            return await wb.computed.settle()

        await wait_until(applied, message="the journal applied")
        # The lost invalidations could have been of anything: every value is stale.
        assert await wb.redis.exists(entry_key("o3", "outage", "p:c")) == 1
        assert await profile("c") == "S3"
        assert (await profile.validated("c")).source == "redis"


async def test_at_maxmemory_values_are_served_and_misses_computed(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    server = redis_factory("--maxmemory-policy", "noeviction")
    gate = Gate()
    async with WriteBehind(
        redis_url=server.url, mongo=mongo_db, prefix="o4", partitions=4, reads=POLICY
    ) as wb:
        profile = _profile(wb, gate)
        assert await profile("a") == "S1"
        await wb.redis.config_set("maxmemory", "1")  # every write is refused from now on
        try:
            gate.state = "S2"
            assert await profile("a") == "S1"  # served: the check writes nothing
            assert await profile("b") == "S2"  # the lease is refused: computed, not stored
            assert await profile("b") == "S2"
            assert gate.runs == 3
            assert await wb.redis.exists(entry_key("o4", "outage", "p:b")) == 0
        finally:
            await wb.redis.config_set("maxmemory", "0")


async def test_an_applied_journal_announces_each_dropped_entry(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    """A journaled ``invalidate`` wakes other processes' waiters when it is applied, as the
    same call made with Redis there does (they would otherwise wait ``lock_timeout``)."""
    server = redis_factory()
    gate = Gate()
    async with WriteBehind(
        redis_url=server.url, mongo=mongo_db, prefix="o4", partitions=4, reads=POLICY, journal=True
    ) as wb:
        profile = _profile(wb, gate)
        assert await profile("a") == "S1"
        watcher = Redis.from_url(server.url)
        pubsub = watcher.pubsub()
        await pubsub.subscribe(channel_of(entry_key("o4", "outage", "p:a")))
        try:
            server.pause()
            try:
                while not wb.redis_guard.breaker_open:  # so the invalidation is journaled
                    await profile("x")
                await profile.invalidate("a")
            finally:
                server.resume()
            await wait_until(wb.computed.settle, message="the journal applied")

            async def announced() -> bool:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                return message is not None and message["data"] == b"invalidated"

            await wait_until(announced, message="the entry's invalidation announced")
            assert await watcher.exists(entry_key("o4", "outage", "p:a")) == 0
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            await watcher.aclose()


def _bumps(namespace: str) -> float:
    labels = {"function": "", "namespace": namespace, "outcome": "namespace"}
    return REGISTRY.get_sample_value("writebehind_sdk_computed_total", labels) or 0.0


async def test_bumped_namespaces_no_function_declares_share_one_metric_label(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    server = redis_factory()
    async with WriteBehind(redis_url=server.url, mongo=mongo_db, prefix="o5", partitions=4) as wb:
        _profile(wb, Gate())  # declares namespace "outage"
        declared, other = _bumps("outage"), _bumps("other")
        await wb.bump_namespace("outage")
        for n in range(3):
            await wb.bump_namespace(f"tenant-{n}")  # made per call: must not add series
        assert _bumps("outage") - declared == 1
        assert _bumps("other") - other == 3
        assert all(_bumps(f"tenant-{n}") == 0 for n in range(3))


async def test_the_journal_depth_sums_the_clients_of_a_prefix(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    """Two clients of one prefix in one process: the gauge is what both journals hold, each
    client adding its own changes (neither overwrites the other's), and a closed client's
    journal no longer counts."""
    server = redis_factory()
    options: dict[str, Any] = {
        "redis_url": server.url,
        "mongo": mongo_db,
        "prefix": "o6",
        "partitions": 4,
        "reads": POLICY,
        "journal": True,
    }
    async with WriteBehind(**options) as one, WriteBehind(**options) as two:
        server.pause()
        try:
            for wb in (one, two):
                while not wb.redis_guard.breaker_open:  # so the invalidations are journaled
                    await _profile(wb, Gate())("x")
            await one.invalidate_tags("a")
            await two.invalidate_tags("b", "c")
            assert _depth("o6") == 3
            await one.invalidate_tags("d")
            assert _depth("o6") == 4
        finally:
            server.resume()
        await wait_until(one.computed.settle, message="one's journal applied")
        assert _depth("o6") == 2  # two's, still held
        await two.aclose()  # held, then lost: no longer counted
        assert _depth("o6") == 0
