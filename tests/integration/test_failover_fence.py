"""A writer still holding versions read from a lost Redis primary must not write them once
a new primary was seeded below them (core/witness.py): the floor is raised too late to
protect that new primary, so each writer checks, after the floor and before the data,
that the partition's primary still holds the record its newest version came from.

Each test (the worker, replay, a dead-letter re-drive, write-through) holds a
writer between reading its versions and raising the floor (``FloorHold``),
fails over to a replica (promoted, behind a proxy, its clock an hour behind
the lost primary's), makes a newer write on the new primary (seeded from the
floor not yet raised), then lets the writer go on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.proxy import Proxy
from tests.support.seeding import FloorHold, fail_over, promote
from tests.support.servers import RedisServer, replica_online
from tests.support.streams import letter_for_sole_record, running_worker
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.errors import PrimaryChanged
from writebehind.core.version import Version
from writebehind.sink.bulk import MongoSink
from writebehind.tools.dead_letters import redrive_all
from writebehind.tools.replay import ReplayOptions, ReplayRange, replay

pytestmark = pytest.mark.anyio

AHEAD_MS = 3_600_000
"""How far the lost primary's clock ran ahead of the promoted replica's."""


class Pair:
    """A primary and its replica, reached through one proxy address (the primary's until
    ``fail_over``)."""

    def __init__(self, primary: RedisServer, replica: RedisServer, proxy: Proxy) -> None:
        self.primary, self.replica, self.proxy = primary, replica, proxy
        self.url = f"redis://127.0.0.1:{proxy.port}/0"

    async def fail_over(self) -> None:
        await fail_over(self.proxy, self.primary, self.replica)

    async def detach_replica(self) -> None:
        """Promote the replica now, before the primary takes the writes a test makes next:
        the new primary will never have them."""
        await promote(self.replica)

    async def clock_ahead(self, stream: str) -> Version:
        """Make the primary issue ``stream``'s next ids an hour ahead (its clock ahead)."""
        client = Redis.from_url(self.primary.url)
        try:
            seconds, _ = await client.time()
            ahead = Version(int(seconds) * 1000 + AHEAD_MS, 0)
            await client.xadd(stream, {"seed": "1"}, id=str(ahead), maxlen=0)
        finally:
            await client.aclose()
        return ahead


@asynccontextmanager
async def _pair(redis_factory: Callable[..., RedisServer]) -> AsyncIterator[Pair]:
    primary = redis_factory()
    replica = redis_factory("--replicaof", "127.0.0.1", str(primary.port))
    client = Redis.from_url(primary.url)
    try:
        await wait_until(lambda: replica_online(client), message="the replica online")
    finally:
        await client.aclose()
    async with Proxy("127.0.0.1", primary.port) as proxy:
        yield Pair(primary, replica, proxy)


def _wb(url: str, mongo_db: Any, **options: Any) -> WriteBehind:
    return WriteBehind(
        redis_url=url, mongo=mongo_db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS, **options
    )


async def _content(mongo_db: Any, doc_id: str) -> Any:
    doc = await mongo_db["users"].find_one({"_id": doc_id})
    return None if doc is None else doc["n"]


async def test_a_worker_holding_a_lost_primarys_batch_leaves_it_and_newer_writes_win(
    redis_factory: Callable[..., RedisServer], mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = FloorHold(monkeypatch)
    async with _pair(redis_factory) as pair, _wb(pair.url, mongo_db) as wb:
        users = wb.collection("users")
        await pair.detach_replica()
        ahead = await pair.clock_ahead(wb.keys.stream(wb.keys.partition_of("users", "a")))
        lost = await users.set("a", {"n": "from the lost primary"})
        assert lost > ahead
        async with running_worker(pair.url, mongo_db) as worker:
            with anyio.fail_after(20):
                await hold.reached.wait()  # read the batch; its floor update not sent yet
            await pair.fail_over()
            # Seeded from the floor as it is now: below the held batch's version.
            newest = await users.set("a", {"n": "after the failover"})
            assert newest < lost
            hold.release()
            await wait_until(
                lambda: _is(mongo_db, "a", "after the failover"),
                timeout=20,
                message="the write made on the new primary in MongoDB",
            )
            assert worker.stats.left_for_new_primary == 1
        # Nothing older came back over it meanwhile.
        assert await _content(mongo_db, "a") == "after the failover"


async def _is(mongo_db: Any, doc_id: str, n: Any) -> bool:
    return await _content(mongo_db, doc_id) == n


async def test_a_held_batch_the_new_primary_has_is_written_and_later_ids_are_above_it(
    redis_factory: Callable[..., RedisServer], mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = FloorHold(monkeypatch)
    async with _pair(redis_factory) as pair, _wb(pair.url, mongo_db) as wb:
        users = wb.collection("users")
        await pair.clock_ahead(wb.keys.stream(wb.keys.partition_of("users", "s")))
        async with _wb(pair.url, mongo_db, wait_replicas=1, wait_timeout=5) as waiting:
            kept = await waiting.collection("users").set("s", {"n": "replicated"})
        async with running_worker(pair.url, mongo_db) as worker:
            with anyio.fail_after(20):
                await hold.reached.wait()
            await pair.fail_over()
            hold.release()
            await users.wait_persisted(kept, timeout=20)
            assert worker.stats.left_for_new_primary == 0
            later = await users.set("s", {"n": "later"})
            assert later > kept  # the new primary's stream holds it: its ids go on above
            await users.wait_persisted(later, timeout=20)
        assert await _content(mongo_db, "s") == "later"


async def _held_across_a_failover(
    writer: Callable[[], Awaitable[Any]],
    hold: FloorHold,
    pair: Pair,
    after: Callable[[], Awaitable[Any]],
) -> list[PrimaryChanged]:
    """Run ``writer`` until ``hold`` stops it before its floor update, fail over to the
    replica an hour behind, make ``after`` (a write on the new primary), then let the
    writer go on. Returns the ``PrimaryChanged`` it raised, if any."""
    failed: list[PrimaryChanged] = []

    async def write() -> None:
        try:
            await writer()
        except PrimaryChanged as exc:
            failed.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        with anyio.fail_after(20):
            await hold.reached.wait()  # read what it writes; its floor update not sent yet
        await pair.fail_over()
        await after()
        hold.release()
    return failed


async def test_replay_does_not_write_a_chunk_read_from_a_lost_primary(
    redis_factory: Callable[..., RedisServer], mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = FloorHold(monkeypatch)
    async with _pair(redis_factory) as pair, _wb(pair.url, mongo_db) as wb:
        users = wb.collection("users")
        await pair.detach_replica()
        await pair.clock_ahead(wb.keys.stream(wb.keys.partition_of("users", "p")))
        await users.set("p", {"n": "from the lost primary"})  # no worker: replay applies it
        client = Redis.from_url(pair.url)
        try:
            sink = MongoSink(mongo_db, prefix=wb.keys.prefix)
            # allow_gap: the clock_ahead entry was trimmed at once.
            options = ReplayOptions(ReplayRange.parse("0", None), allow_gap=True)
            failed = await _held_across_a_failover(
                lambda: replay(client, sink, wb.keys, options),
                hold,
                pair,
                lambda: users.set("p", {"n": "after the failover"}),
            )
        finally:
            await client.aclose()
        assert len(failed) == 1, "replay wrote a chunk its primary no longer holds"
        assert await _content(mongo_db, "p") is None


async def test_write_through_does_not_write_a_version_the_new_primary_lacks(
    redis_factory: Callable[..., RedisServer], mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = FloorHold(monkeypatch)
    async with _pair(redis_factory) as pair, _wb(pair.url, mongo_db) as wb:
        through = wb.collection("users", mode="write_through")
        await pair.detach_replica()
        await pair.clock_ahead(wb.keys.stream(wb.keys.partition_of("users", "w")))
        failed = await _held_across_a_failover(
            lambda: through.set("w", {"n": "from the lost primary"}),
            hold,
            pair,
            lambda: wb.collection("users").set("w", {"n": "after the failover"}),
        )
        assert len(failed) == 1, "write-through wrote a version its primary no longer holds"
        assert await _content(mongo_db, "w") is None


async def test_a_redrive_does_not_write_letters_read_from_a_lost_primary(
    redis_factory: Callable[..., RedisServer], mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = FloorHold(monkeypatch)
    async with _pair(redis_factory) as pair, _wb(pair.url, mongo_db) as wb:
        users = wb.collection("users")
        partition = wb.keys.partition_of("users", "d")
        await pair.detach_replica()
        await pair.clock_ahead(wb.keys.stream(partition))
        await users.set("d", {"n": "from the lost primary"})
        client = Redis.from_url(pair.url)
        try:
            await letter_for_sole_record(client, wb.keys, partition)
            failed = await _held_across_a_failover(
                lambda: redrive_all(client, mongo_db, wb.keys),
                hold,
                pair,
                lambda: users.set("d", {"n": "after the failover"}),
            )
        finally:
            await client.aclose()
        assert len(failed) == 1, "a re-drive wrote a letter its primary no longer holds"
        assert await _content(mongo_db, "d") is None


async def test_write_through_whose_record_was_persisted_and_trimmed_meanwhile_returns(
    redis: Redis, redis_server: RedisServer, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No failover: the record is missing because a worker persisted it and a retention-0
    # trim removed it before write-through's check; MongoDB holds the version already.
    hold = FloorHold(monkeypatch)
    async with _wb(redis_server.url, mongo_db) as wb:
        through = wb.collection("users", mode="write_through")
        made: list[Version] = []

        async def write_through() -> None:
            made.append(await through.set("t", {"n": "through"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_through)
            with anyio.fail_after(20):
                await hold.reached.wait()
            async with running_worker(redis_server.url, mongo_db):
                await wait_until(
                    lambda: _is(mongo_db, "t", "through"), message="the worker to persist it"
                )
            await redis.xtrim(wb.keys.stream(wb.keys.partition_of("users", "t")), maxlen=0)
            hold.release()
        assert len(made) == 1
        stored = await mongo_db["users"].find_one({"_id": "t"})
        assert Version.from_pair(stored["_wb"]["v"]) == made[0]
