"""The FILL, LEASE and RELEASE scripts on their own: every way a fill is refused."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.core.scripts import Scripts
from writebehind.core.scripts_read import EVICT, FLUSH_MARK
from writebehind.sdk.reading.entry import parse_script_reply
from writebehind.sdk.reading.lease import Place

pytestmark = pytest.mark.anyio

KEYS = KeySpace("t", 4)


@pytest.fixture
def place() -> Place:
    return Place.of(KEYS, "users", "u1")


async def _now(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _fill(
    redis: Redis,
    place: Place,
    version: str,
    *,
    token: str | None = None,
    started: int | None = None,
    kind: str = "d",
    max_age_ms: int = 5000,
    watch: bool = False,
) -> Any:
    """FILL, as the reader sends it; without ``token``, under a lease taken just before
    (LEASE in refresh mode: whatever the entry), whose Redis time is ``started``."""
    if token is None:
        token = "T"
        lease = [place.entry, place.lease]
        taken = parse_script_reply(
            await Scripts(redis).lease(keys=lease, args=[token, 60_000, "r"])
        )
        assert taken.status == "l"
        started = taken.now_ms if started is None else started
    started = await _now(redis) if started is None else started
    args = [token, started, max_age_ms, version, kind, b"BODY", 60_000, 12, place.channel]
    args.append("watch" if watch else "own")
    keys = [place.entry, place.lease, place.marker, place.flush_marker]
    reply = await Scripts(redis).fill(keys=keys, args=args)
    return parse_script_reply(reply)


async def test_fills_an_absent_entry_as_clean(redis: Redis, place: Place) -> None:
    reply = await _fill(redis, place, "5-0")
    assert reply.status == "filled"
    assert reply.entry.version is not None and str(reply.entry.version) == "5-0"
    assert reply.entry.clean and reply.entry.body == b"BODY" and reply.entry.load_ms == 12
    assert await redis.hget(place.entry, "f") == b"1"


async def test_never_over_a_dirty_entry(redis: Redis, place: Place) -> None:
    await redis.hset(place.entry, mapping={"v": "3-0", "d": b"dirty"})
    reply = await _fill(redis, place, "5-0")
    assert reply.status == "dirty"
    assert await redis.hgetall(place.entry) == {b"v": b"3-0", b"d": b"dirty"}
    assert await redis.ttl(place.entry) == -1


async def test_never_over_a_clean_tombstone(redis: Redis, place: Place) -> None:
    await redis.hset(place.entry, mapping={"v": "3-0", "t": "1"})
    await redis.expire(place.entry, 100)
    assert (await _fill(redis, place, "5-0")).status == "tombstone"
    assert await redis.hget(place.entry, "t") == b"1"


async def test_never_over_a_newer_version_compared_as_numbers(redis: Redis, place: Place) -> None:
    await redis.hset(place.entry, mapping={"v": "5-10", "d": b"newer"})
    await redis.expire(place.entry, 100)
    assert (await _fill(redis, place, "5-9")).status == "newer"  # "5-9" > "5-10" as text
    assert await redis.hget(place.entry, "d") == b"newer"


async def test_over_an_older_clean_entry_and_renews_the_same(redis: Redis, place: Place) -> None:
    await redis.hset(place.entry, mapping={"v": "5-9", "d": b"older"})
    await redis.expire(place.entry, 10)
    assert (await _fill(redis, place, "5-10")).status == "filled"
    assert await redis.hget(place.entry, "d") == b"BODY"
    await redis.expire(place.entry, 10)
    assert (await _fill(redis, place, "5-10")).status == "renewed"
    assert await redis.ttl(place.entry) > 10


async def test_a_late_fill_is_refused(redis: Redis, place: Place) -> None:
    started = await _now(redis) - 6000
    assert (await _fill(redis, place, "5-0", started=started)).status == "late"
    assert await redis.exists(place.entry) == 0


async def test_a_frozen_holder_cannot_release_or_fill_over_anothers_lease(
    redis: Redis, place: Place
) -> None:
    scripts = Scripts(redis)
    first = parse_script_reply(
        await scripts.lease(keys=[place.entry, place.lease], args=["A", 50, "m"])
    )
    assert first.status == "l"
    second = parse_script_reply(
        await scripts.lease(keys=[place.entry, place.lease], args=["B", 50, "m"])
    )
    assert second.status == "w"
    await redis.delete(place.lease)  # A's lease ran out while A was frozen ...
    third = parse_script_reply(
        await scripts.lease(keys=[place.entry, place.lease], args=["B", 5000, "m"])
    )
    assert third.status == "l"  # ... and B took it
    assert (await _fill(redis, place, "5-0", token="A")).status == "lease_lost"
    assert await redis.get(place.lease) == b"B"
    assert await redis.exists(place.entry) == 0
    assert await scripts.release(keys=[place.lease], args=["A", place.channel]) == 0
    assert await redis.get(place.lease) == b"B"
    assert (await _fill(redis, place, "5-0", token="B")).status == "filled"
    assert await redis.exists(place.lease) == 0


async def test_lease_returns_an_entry_that_exists(redis: Redis, place: Place) -> None:
    await redis.hset(place.entry, mapping={"v": "2-0", "a": "1"})
    await redis.expire(place.entry, 30)
    reply = parse_script_reply(
        await Scripts(redis).lease(keys=[place.entry, place.lease], args=["A", 1000, "m"])
    )
    assert reply.status == "e"
    assert reply.entry.negative and reply.entry.reads_absent
    assert await redis.exists(place.lease) == 0


async def test_a_fill_announces_itself(redis: Redis, place: Place) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(place.channel)
    try:
        await _fill(redis, place, "1-0", kind="a")
        messages = []
        while len(messages) < 2:
            message = await pubsub.get_message(timeout=5)
            assert message is not None
            messages.append(message)
        assert messages[1]["data"] == b"filled"
        assert await redis.hmget(place.entry, ["a", "d"]) == [b"1", None]
    finally:
        await pubsub.aclose()


async def test_a_write_takes_the_lease_so_a_load_begun_before_it_never_fills(
    wb: WriteBehind, redis: Redis
) -> None:
    """Even where the write's entry is gone by then (persisted, then evicted under a
    ``volatile-*`` policy: DEL stands in for both), the fill of the older load is refused."""
    place = Place.of(wb.keys, "users", "u1")
    lease = [place.entry, place.lease]
    taken = parse_script_reply(await wb.scripts.lease(keys=lease, args=["A", 5000, "m"]))
    assert taken.status == "l"
    await wb.collection("users").set("u1", {"n": 2})
    assert await redis.exists(place.lease) == 0
    await redis.delete(place.entry)
    assert (await _fill(redis, place, "1-0", token="A")).status == "lease_lost"
    assert await redis.exists(place.entry) == 0


async def test_a_watched_fill_needs_the_holders_lease_and_leaves_it(
    redis: Redis, place: Place
) -> None:
    """A waiter past ``lock_timeout`` fills under the frozen holder's lease, unreleased;
    once a write has taken that lease away, it fills nothing."""
    scripts = Scripts(redis)
    lease = [place.entry, place.lease]
    assert (
        parse_script_reply(await scripts.lease(keys=lease, args=["H", 60_000, "m"])).status == "l"
    )
    waiting = parse_script_reply(await scripts.lease(keys=lease, args=["W", 60_000, "m"]))
    assert (waiting.status, waiting.holder) == ("w", "H")
    assert (await _fill(redis, place, "1-0", token="H", watch=True)).status == "filled"
    assert await redis.get(place.lease) == b"H"  # not the waiter's to release
    await redis.delete(place.entry, place.lease)  # a write (it deletes the lease), evicted
    assert (await _fill(redis, place, "1-0", token="H", watch=True)).status == "lease_lost"
    assert await redis.exists(place.entry) == 0


async def test_one_refresh_lease_per_entry_across_processes(redis: Redis, place: Place) -> None:
    """Refresh mode takes the lease over a present entry; a second refresher waits."""
    scripts = Scripts(redis)
    await redis.hset(place.entry, mapping={"v": "2-0", "d": b"doc"})
    await redis.expire(place.entry, 30)
    lease = [place.entry, place.lease]
    first = parse_script_reply(await scripts.lease(keys=lease, args=["R1", 5000, "r"]))
    second = parse_script_reply(await scripts.lease(keys=lease, args=["R2", 5000, "r"]))
    assert (first.status, second.status, second.holder) == ("l", "w", "R1")


async def test_an_invalidation_takes_the_lease_too(redis: Redis, place: Place) -> None:
    """The eviction marker has a TTL (a ``volatile-*`` policy may evict it): the lease the
    invalidator's EVICT deletes still refuses a fill whose load began before it."""
    scripts = Scripts(redis)
    lease = [place.entry, place.lease]
    assert parse_script_reply(await scripts.lease(keys=lease, args=["A", 5000, "m"])).status == "l"
    evict = redis.register_script(EVICT)
    stream = KEYS.invalidations(place.partition)
    keys = [place.entry, place.marker, stream, place.lease]
    await evict(keys=keys, args=["users", "u1", 60_000, 100, "ct"])
    assert await redis.exists(place.lease) == 0
    await redis.delete(place.marker)  # evicted
    assert (await _fill(redis, place, "1-0", token="A")).status == "lease_lost"
    assert await redis.exists(place.entry) == 0


async def test_a_fill_without_a_lease_token_fills_nothing(redis: Redis, place: Place) -> None:
    """No tokenless path: a fill over a missing entry is safe only under its lease."""
    assert (await _fill(redis, place, "1-0", token="")).status == "lease_lost"
    await redis.set(place.lease, "A")
    assert (await _fill(redis, place, "1-0", token="")).status == "lease_lost"
    assert await redis.exists(place.entry) == 0
    assert await redis.get(place.lease) == b"A"


async def test_a_fill_begun_before_the_collections_flush_is_refused(
    redis: Redis, place: Place
) -> None:
    """The invalidator's flush (its resume token lost) deletes only the entries that exist:
    a fill still loading, its lease held, meets the flush marker instead."""
    mark = redis.register_script(FLUSH_MARK)
    lease = [place.entry, place.lease]
    taken = parse_script_reply(await Scripts(redis).lease(keys=lease, args=["A", 60_000, "m"]))
    assert taken.status == "l"
    flushed = int(await mark(keys=[place.flush_marker]))
    assert flushed >= taken.now_ms
    assert await redis.pttl(place.flush_marker) == -1  # no TTL: volatile-* never evicts it
    reply = await _fill(redis, place, "1-0", token="A", started=taken.now_ms)
    assert reply.status == "flushed"
    assert await redis.exists(place.entry) == 0
    assert await redis.exists(place.lease) == 0  # released all the same: it was A's

    # A load begun after the flush fills (the marker's ms is past: no tie with it).
    async def past() -> bool:
        return await _now(redis) > flushed

    await wait_until(past, timeout=1, interval=0.001, message="Redis time past the marker")
    assert (await _fill(redis, place, "1-0")).status == "filled"


async def test_another_collections_flush_does_not_refuse_the_fill(
    redis: Redis, place: Place
) -> None:
    other = Place.of(KEYS, "orders", "u1")
    await redis.register_script(FLUSH_MARK)(keys=[KEYS.flush_marker(place.partition, "orders")])
    assert other.flush_marker != place.flush_marker
    started = await _now(redis) - 1000
    assert (await _fill(redis, place, "1-0", started=started)).status == "filled"
