"""Cached computations on real servers: served from Redis, invalidated by key, tag, namespace."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.computing import Gate, computed_count
from tests.support.processes import REPO_ROOT
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import ConfigurationError, InvalidInput
from writebehind.sdk.computing.keys import entry_key, lease_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def other(redis_server: Any, mongo_db: Any) -> AsyncIterator[WriteBehind]:
    """Another client of the same deployment, with its own connections and flights:
    another process, as far as Redis can tell."""
    client = Redis.from_url(redis_server.url)
    try:
        async with WriteBehind(redis=client, mongo=mongo_db, prefix="t", partitions=4) as wb:
            yield wb
    finally:
        await client.aclose()


async def test_computed_once_then_served_from_redis(wb: WriteBehind) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="profile:{user_id}", tags=["user:{user_id}"], namespace="profiles")
    async def profile(user_id: str) -> Any:
        return await gate.run(user_id)

    name = profile.name
    hits = computed_count(name, "hit")
    assert await profile("42") == {"state": "S1", "args": ["42"]}
    gate.state = "S2"
    assert await profile("42") == {"state": "S1", "args": ["42"]}
    assert await profile(user_id="42") == {"state": "S1", "args": ["42"]}
    assert gate.runs == 1
    assert computed_count(name, "hit") - hits == 2
    assert await wb.redis.exists(entry_key("t", "profiles", "profile:42")) == 1
    assert await profile("7") == {"state": "S2", "args": ["7"]}
    assert gate.runs == 2


async def test_invalidate_refresh_tags_and_namespace(wb: WriteBehind) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="p:{user_id}", tags=["user:{user_id}", "all"], namespace="profiles")
    async def profile(user_id: str) -> Any:
        return await gate.run()

    assert await profile("42") == "S1"
    gate.state = "S2"
    await profile.invalidate("42")
    assert await profile("42") == "S2"
    gate.state = "S3"
    assert await profile.refresh("42") == "S3"
    assert await profile("42") == "S3"
    gate.state = "S4"
    await wb.invalidate_tags("user:42")
    assert await profile("42") == "S4"
    gate.state = "S5"
    await wb.invalidate_tags("user:other")  # another tag: still served
    assert await profile("42") == "S4"
    await wb.bump_namespace("profiles")
    assert await profile("42") == "S5"
    assert gate.runs == 5
    assert computed_count(profile.name, "stale_generation", "profiles") >= 2


async def test_tag_invalidated_while_computing_makes_the_next_call_recompute(
    wb: WriteBehind,
) -> None:
    """The loader reads S1, invalidate_tags runs mid-computation, the loader returns S1:
    the next call recomputes (the stamps were captured before the computation ran)."""
    gate = Gate()

    @wb.cached(ttl=300, key="p:{user_id}", tags=["user:{user_id}"])
    async def profile(user_id: str) -> Any:
        return await gate.run()

    refused = computed_count(profile.name, "fill_stale_generation")
    gate.block()
    async with anyio.create_task_group() as tg:
        results: list[Any] = []

        async def first() -> None:
            results.append(await profile("42"))

        tg.start_soon(first)
        await gate.started.wait()
        gate.state = "S2"
        await wb.invalidate_tags("user:42")
        gate.release.set()
    assert results == ["S1"]
    assert computed_count(profile.name, "fill_stale_generation") - refused == 1
    gate.hold = False
    assert await profile("42") == "S2"
    assert gate.runs == 2
    assert await profile("42") == "S2"
    assert gate.runs == 2


async def test_invalidate_while_computing_stops_its_fill(wb: WriteBehind) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="p:{user_id}", namespace="ns")
    async def profile(user_id: str) -> Any:
        return await gate.run()

    gate.block()
    lost = computed_count(profile.name, "fill_lease_lost")
    async with anyio.create_task_group() as tg:
        tg.start_soon(profile, "42")
        await gate.started.wait()
        gate.state = "S2"
        await profile.invalidate("42")
        gate.release.set()
    assert computed_count(profile.name, "fill_lease_lost") - lost == 1
    assert await wb.redis.exists(entry_key("t", "ns", "p:42")) == 0
    gate.hold = False
    assert await profile("42") == "S2"


async def test_a_dependency_written_by_another_client_makes_the_next_call_recompute(
    wb: WriteBehind, other: WriteBehind
) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="p:{user_id}", depends_on=lambda user_id: [("users", user_id)])
    async def profile(user_id: str) -> Any:
        return await gate.run()

    stale = computed_count(profile.name, "stale_dependency")
    await other.collection("users").set("42", {"n": 1})
    assert await profile("42") == "S1"
    assert await profile("42") == "S1"
    gate.state = "S2"
    await other.collection("users").set("42", {"n": 2})  # no invalidation call
    assert await profile("42") == "S2"
    assert computed_count(profile.name, "stale_dependency") - stale == 1
    # An absent document: a negative entry's version is captured; its creation counts.
    gate.state = "S3"
    assert await profile("new") == "S3"
    gate.state = "S4"
    assert await profile("new") == "S3"
    await other.collection("users").set("new", {"n": 1})
    assert await profile("new") == "S4"
    # Written while the computation runs: the fill is refused.
    await profile.invalidate("42")
    refused = computed_count(profile.name, "fill_stale_dependency")
    gate.block()
    gate.state = "S5"
    async with anyio.create_task_group() as tg:
        tg.start_soon(profile, "42")
        await gate.started.wait()
        await other.collection("users").set("42", {"n": 3})
        gate.state = "S6"
        gate.release.set()
    assert computed_count(profile.name, "fill_stale_dependency") - refused == 1
    gate.hold = False
    assert await profile("42") == "S6"


async def test_what_is_cached(redis: Redis, mongo_db: Any) -> None:
    """None only for the negative TTL (capped), exceptions never, cache_if for the rest."""
    gate = Gate(state=None)
    async with WriteBehind(
        redis=redis,
        mongo=mongo_db,
        prefix="t",
        partitions=4,
        reads=ReadPolicy(negative_ttl=60, max_negative_ttl=5),
    ) as wb:

        @wb.cached(ttl=300, key="k:{x}", namespace="n", cache_if=lambda v: v != "skip")
        async def f(x: str) -> Any:
            if gate.state == "boom":
                gate.runs += 1
                raise RuntimeError("boom")
            return await gate.run()

        assert await f("none") is None
        assert await f("none") is None
        assert gate.runs == 1
        assert 0 < await redis.pttl(entry_key("t", "n", "k:none")) <= 5000
        gate.state = "boom"
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await f("err")
        assert gate.runs == 3
        assert await redis.exists(entry_key("t", "n", "k:err")) == 0
        gate.state = "skip"
        assert await f("s") == "skip"
        assert await f("s") == "skip"
        assert gate.runs == 5
        assert await redis.exists(entry_key("t", "n", "k:s")) == 0

    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix="t", partitions=4, reads=ReadPolicy(negative_ttl=0)
    ) as wb:
        gate.state, gate.runs = None, 0

        @wb.cached(ttl=300, key="k:{x}", namespace="n2")
        async def g(x: str) -> Any:
            return await gate.run()

        assert await g("a") is None
        assert await g("a") is None
        assert gate.runs == 2


async def test_values_are_bson_and_damaged_entries_are_misses(wb: WriteBehind) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}", namespace="n")
    async def f(x: str) -> Any:
        gate.runs += 1
        return gate.state

    gate.state = {1, 2}  # a set: BSON cannot hold it
    with pytest.raises(InvalidInput):
        await f("a")
    assert await wb.redis.exists(entry_key("t", "n", "k:a")) == 0
    gate.state = {"x": (1, 2)}
    assert await f("a") == {"x": [1, 2]}  # computed: as Redis will give it back
    assert await f("a") == {"x": [1, 2]}  # from Redis: a BSON array
    before = computed_count(f.name, "undecodable")
    await wb.redis.hset(entry_key("t", "n", "k:a"), "b", b"\x80\x04\x95 not bson")
    gate.state = "fresh"
    assert await f("a") == "fresh"
    assert computed_count(f.name, "undecodable") - before >= 1
    assert await f("a") == "fresh"


async def test_one_computation_per_key_in_process_and_a_cancelled_caller_cancels_itself(
    wb: WriteBehind,
) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}")
    async def f(x: str) -> Any:
        return await gate.run()

    gate.block()
    results: list[Any] = []
    doomed = anyio.CancelScope()
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            results.append(await f("a"))

        async def doomed_call() -> None:
            with doomed:
                await f("a")

        tg.start_soon(doomed_call)  # its call starts the computation
        await gate.started.wait()
        for _ in range(20):
            tg.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        doomed.cancel()
        await anyio.wait_all_tasks_blocked()
        gate.release.set()
    assert doomed.cancelled_caught
    assert results == ["S1"] * 20
    assert gate.runs == 1


async def test_one_computation_per_key_across_clients(wb: WriteBehind, other: WriteBehind) -> None:
    """A second client (its own connections and flights: another process, as far as Redis
    can tell) waits for the first one's fill instead of computing."""
    gate = Gate()

    def decorate(client: WriteBehind) -> Any:
        @client.cached(ttl=300, key="k:{x}", namespace="shared")
        async def f(x: str) -> Any:
            return await gate.run()

        return f

    mine, theirs = decorate(wb), decorate(other)
    gate.block()
    results: list[Any] = []
    waits = computed_count(theirs.name, "lease_wait")
    async with anyio.create_task_group() as tg:

        async def call(fn: Any) -> None:
            results.append(await fn("a"))

        tg.start_soon(call, mine)
        await gate.started.wait()
        tg.start_soon(call, theirs)

        async def waiting() -> bool:
            return computed_count(theirs.name, "lease_wait") > waits

        await wait_until(waiting, message="the other client waits for the lease")
        gate.release.set()
    assert results == ["S1", "S1"]
    assert gate.runs == 1


async def test_refused_options(wb: WriteBehind) -> None:
    async def f(user_id: str) -> Any:
        return user_id

    with pytest.raises(ConfigurationError, match="not a parameter"):
        wb.cached(ttl=1, key="p:{nobody}")(f)
    with pytest.raises(ConfigurationError, match="not a parameter"):
        wb.cached(ttl=1, tags=["t:{0}"])(f)
    with pytest.raises(ConfigurationError, match="ttl"):
        wb.cached(ttl=0)(f)
    with pytest.raises(ConfigurationError, match="async"):
        wb.cached(ttl=1)(lambda: 1)  # type: ignore[arg-type]
    wb.cluster = True
    try:
        with pytest.raises(ConfigurationError, match="Redis Cluster"):
            wb.cached(ttl=1)
    finally:
        wb.cluster = False
    cached = wb.cached(ttl=1)(f)
    with pytest.raises(InvalidInput):
        await cached(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await wb.invalidate_tags("")


async def test_refresh_beats_a_computation_in_flight(wb: WriteBehind) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}", namespace="refresh")
    async def f(x: str) -> Any:
        return await gate.run()

    gate.block()
    lost = computed_count(f.name, "fill_lease_lost")
    results: list[Any] = []
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            results.append(await f("a"))

        tg.start_soon(call)
        await gate.started.wait()
        gate.hold = False  # the refresh's own run does not wait
        gate.state = "S2"
        assert await f.refresh("a") == "S2"
        gate.release.set()
    assert results == ["S1"]  # its caller gets what it computed...
    assert computed_count(f.name, "fill_lease_lost") - lost == 1  # ...but it is not stored
    assert await f("a") == "S2"
    assert gate.runs == 2


async def test_early_refresh_recomputes_in_the_background(wb: WriteBehind) -> None:
    gate = Gate()

    @wb.cached(ttl=5, key="k:{x}", namespace="early", early_refresh=100_000)
    async def f(x: str) -> Any:
        return await gate.run()

    assert await f("a") == "S1"
    gate.state = "S2"

    async def refreshed() -> bool:
        return bool(await f("a") == "S2")

    await wait_until(refreshed, message="an early refresh stored S2")
    assert computed_count(f.name, "early_refresh") >= 1
    assert (await f.validated("a")).source == "redis"


async def test_an_emptied_script_cache_is_no_failure(wb: WriteBehind) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}", tags=["t"], namespace="noscript")
    async def f(x: str) -> Any:
        return await gate.run()

    assert await f("a") == "S1"
    await wb.redis.script_flush()  # a restart or failover empties it
    assert await f("a") == "S1"
    await wb.redis.script_flush()
    await wb.invalidate_tags("t")
    await wb.redis.script_flush()
    await f.invalidate("b")
    gate.state = "S2"
    await wb.redis.script_flush()
    assert await f("a") == "S2"
    assert gate.runs == 2


WRITER = """
import asyncio, sys
from writebehind import WriteBehind

async def main() -> None:
    async with WriteBehind(
        redis_url=sys.argv[1], mongo_url=sys.argv[2], database=sys.argv[3], prefix="t",
        partitions=4,
    ) as wb:
        await wb.collection("users").set("42", {"n": 99})

asyncio.run(main())
"""


async def test_a_dependency_written_by_another_process(
    wb: WriteBehind, redis_server: Any, mongo_url: str, database_name: str
) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="p:{user_id}", depends_on=lambda user_id: [("users", user_id)])
    async def profile(user_id: str) -> Any:
        return await gate.run()

    assert await profile("42") == "S1"  # "42" absent: its negative entry's version captured
    assert await profile("42") == "S1"
    gate.state = "S2"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    await anyio.run_process(
        [sys.executable, "-c", WRITER, redis_server.url, mongo_url, database_name],
        env=env,
        check=True,
    )
    assert await profile("42") == "S2"
    assert gate.runs == 2


async def test_a_computation_longer_than_its_lease_stores_nothing(wb: WriteBehind) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}", namespace="slow", lock_timeout=0.2)
    async def f(x: str) -> Any:
        return await gate.run()

    gate.block()
    lost = computed_count(f.name, "fill_lease_lost")
    lease = lease_of(entry_key("t", "slow", "k:a"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(f, "a")
        await gate.started.wait()
        assert await wb.redis.exists(lease) == 1

        async def expired() -> bool:
            return bool(await wb.redis.exists(lease) == 0)

        await wait_until(expired, message="the lease expired")
        gate.release.set()
    assert computed_count(f.name, "fill_lease_lost") - lost == 1
    assert await wb.redis.exists(entry_key("t", "slow", "k:a")) == 0


async def test_validators_are_shared_and_change_with_what_the_value_depends_on(
    wb: WriteBehind, other: WriteBehind
) -> None:
    gate = Gate()

    def decorate(client: WriteBehind) -> Any:
        @client.cached(
            ttl=300,
            key="p:{user_id}",
            namespace="validators",
            depends_on=lambda user_id: [("users", user_id)],
        )
        async def profile(user_id: str) -> Any:
            return await gate.run()

        return profile

    mine, theirs = decorate(wb), decorate(other)
    first = await mine.validated("42")
    assert first.source == "computed" and first.validator is not None
    seen = await theirs.validated("42")
    assert (seen.source, seen.validator) == ("redis", first.validator)
    await other.collection("users").set("42", {"n": 1})
    again = await mine.validated("42")
    assert again.source == "computed" and again.validator != first.validator
    assert (await theirs.validated("42")).validator == again.validator
    assert (await mine.validated("7")).validator != again.validator  # another entry
