"""Races inside one process: a call made after an invalidation, a write or a refused fill.

A call that starts after an invalidation (or a write of a dependency) returned
must not be answered with a value computed before it, even when a computation
of the same key is still in flight in this process and the call would join it.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from tests.support.computing import Gate, computed_count
from tests.support.waiting import wait_until
from writebehind import CachedFunction, WriteBehind
from writebehind.core.errors import ConfigurationError, InvalidInput
from writebehind.sdk.computing.keys import entry_key, lease_key

pytestmark = pytest.mark.anyio

Change = Callable[[WriteBehind, CachedFunction[Any, Any]], Awaitable[Any]]


async def _tag(wb: WriteBehind, f: CachedFunction[Any, Any]) -> None:
    await wb.invalidate_tags("user:42")


async def _namespace(wb: WriteBehind, f: CachedFunction[Any, Any]) -> None:
    await wb.bump_namespace("ns")


async def _key(wb: WriteBehind, f: CachedFunction[Any, Any]) -> None:
    await f.invalidate("42")


async def _dependency(wb: WriteBehind, f: CachedFunction[Any, Any]) -> None:
    await wb.collection("users").set("42", {"n": 2})


@pytest.mark.parametrize(
    "change", [_tag, _namespace, _key, _dependency], ids=["tag", "namespace", "key", "dependency"]
)
async def test_a_call_after_a_change_does_not_join_an_older_computation(
    wb: WriteBehind, change: Change
) -> None:
    """The loader reads S1; the change happens and returns; a new call is made while the
    loader still runs: it gets S2 (before: it joined the flight and got S1)."""
    gate = Gate()
    await wb.collection("users").set("42", {"n": 1})

    @wb.cached(
        ttl=300,
        key="p:{user_id}",
        tags=["user:{user_id}"],
        namespace="ns",
        depends_on=lambda user_id: [("users", user_id)],
    )
    async def profile(user_id: str) -> Any:
        return await gate.run()

    gate.block()
    first: list[Any] = []
    later: list[Any] = []
    async with anyio.create_task_group() as tg:

        async def call(into: list[Any]) -> None:
            into.append(await profile("42"))

        tg.start_soon(call, first)
        await gate.started.wait()
        gate.state = "S2"
        await change(wb, profile)
        misses = computed_count(profile.name, "miss")
        tg.start_soon(call, later)

        async def checked() -> bool:  # the later call read Redis, and went to the flights
            return computed_count(profile.name, "miss") > misses

        await wait_until(checked, message="the later call's check")
        gate.hold = False
        gate.release.set()
    assert first == ["S1"]  # overlapped the change: either value is right
    assert later == ["S2"]
    assert await profile("42") == "S2"


async def test_callers_joining_a_stored_computation_share_it(wb: WriteBehind) -> None:
    """Without a change, the calls joining a flight are answered by it: one computation."""
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}")
    async def f(x: str) -> Any:
        return await gate.run()

    gate.block()
    results: list[Any] = []
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            results.append(await f("a"))

        tg.start_soon(call)
        await gate.started.wait()
        misses = computed_count(f.name, "miss")
        for _ in range(5):
            tg.start_soon(call)

        async def checked() -> bool:
            return computed_count(f.name, "miss") - misses >= 5

        await wait_until(checked, message="the joiners' checks")
        gate.release.set()
    assert results == ["S1"] * 6
    assert gate.runs == 1


async def test_a_failing_cache_if_gives_the_lease_back(wb: WriteBehind) -> None:
    """``cache_if`` raising reaches the caller, and the fill lease is released at once
    (before: held until ``lock_timeout``, so every other process waited that long)."""

    def broken(value: Any) -> bool:
        raise ZeroDivisionError("predicate failed")

    @wb.cached(ttl=300, key="k:{x}", namespace="n", cache_if=broken, lock_timeout=30)
    async def f(x: str) -> Any:
        return x

    with pytest.raises(ZeroDivisionError):
        await f("a")
    assert await wb.redis.exists(lease_key("t", "n", "k:a")) == 0


async def test_the_computing_call_gets_the_value_a_hit_would(wb: WriteBehind) -> None:
    """The first call returns what later calls read back from BSON: lists for tuples,
    datetimes at ms precision under the client's codec options (before: the first call
    had an aware µs datetime and a tuple, every later one a naive ms datetime and a list)."""
    at = datetime.datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)

    @wb.cached(ttl=300, key="k:{x}")
    async def f(x: str) -> Any:
        return {"at": at, "pair": (1, 2)}

    computed = await f.validated("a")
    served = await f.validated("a")
    assert (computed.source, served.source) == ("computed", "redis")
    assert computed.value == served.value
    assert served.value == {"at": at.replace(microsecond=123000, tzinfo=None), "pair": [1, 2]}


async def test_a_value_recomputed_under_the_same_stamps_gets_a_new_validator(
    wb: WriteBehind,
) -> None:
    """``invalidate`` and ``refresh`` move no generation: the recomputed value has the
    same stamps. Its validator (an ETag's basis) must still differ when the value does
    (RFC 9110 section 8.8.3: a strong validator changes with the representation); before,
    a client holding the old ETag got 304 for the new value. Equal values: equal validators."""
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}", namespace="n")
    async def f(x: str) -> Any:
        return await gate.run()

    first = await f.validated("a")
    gate.state = "S2"
    await f.invalidate("a")
    second = await f.validated("a")
    assert (second.value, second.source) == ("S2", "computed")
    assert second.validator != first.validator
    assert (await f.validated("a")).validator == second.validator  # the hit: the same
    gate.state = "S3"
    await f.refresh("a")
    third = await f.validated("a")
    assert (third.value, third.source) == ("S3", "redis")
    assert third.validator not in (first.validator, second.validator)
    gate.state = "S3"
    await f.invalidate("a")
    assert (await f.validated("a")).validator == third.validator  # the same value again


async def test_common_mistakes_get_errors_that_say_what_to_write(wb: WriteBehind) -> None:
    """Before: ``@wb.cached`` gave "takes 1 positional argument but 2 were given", and a
    ``depends_on`` returning one pair complained about ``'users'``."""

    async def f(user_id: str) -> Any:
        return user_id

    with pytest.raises(ConfigurationError, match=r"@wb.cached\(ttl=300"):
        wb.cached(f)  # what @wb.cached without parentheses does
    with pytest.raises(ConfigurationError, match="needs ttl="):
        wb.cached()
    one_pair = wb.cached(ttl=5, depends_on=lambda user_id: ("users", user_id))(f)
    with pytest.raises(InvalidInput, match=r"return a list of \(collection, id\) pairs"):
        await one_pair("1")


async def test_an_entry_of_another_redis_type_is_a_miss_and_is_replaced(wb: WriteBehind) -> None:
    """An entry key holding a string (tampered, or left by something else) is a damaged
    entry: a miss counted ``undecodable``, replaced by the next fill (before: WRONGTYPE
    read as Redis unavailable, so the key was computed on every call, never stored)."""
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}", namespace="n")
    async def f(x: str) -> Any:
        return await gate.run()

    entry = entry_key("t", "n", "k:a")
    await wb.redis.set(entry, "not a hash")
    damaged = computed_count(f.name, "undecodable")
    first = await f.validated("a")
    assert (first.value, first.source) == ("S1", "computed")
    assert computed_count(f.name, "undecodable") > damaged
    assert await wb.redis.type(entry) == b"hash"
    assert (await f.validated("a")).source == "redis"
    assert gate.runs == 1


async def test_callers_joining_a_value_not_stored_share_it_unless_it_changed(
    wb: WriteBehind,
) -> None:
    """A value ``cache_if`` refuses is not stored; the calls that joined its computation
    still share it when nothing it depends on changed meanwhile (one computation), and
    compute again when something did (the key was invalidated)."""
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}", cache_if=lambda value: False)
    async def f(x: str) -> Any:
        return await gate.run()

    async def round_of(change: bool) -> list[Any]:
        results: list[Any] = []
        gate.block()
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                results.append(await f("a"))

            tg.start_soon(call)
            await gate.started.wait()
            if change:
                gate.state = "S2"
                await f.invalidate("a")
            misses = computed_count(f.name, "miss")
            for _ in range(3):
                tg.start_soon(call)

            async def checked() -> bool:
                return computed_count(f.name, "miss") - misses >= 3

            await wait_until(checked, message="the joiners' checks")
            gate.hold = False
            gate.release.set()
        return sorted(results)

    assert await round_of(change=False) == ["S1"] * 4
    assert gate.runs == 1
    assert await round_of(change=True) == ["S1", "S2", "S2", "S2"]
    assert gate.runs == 3
