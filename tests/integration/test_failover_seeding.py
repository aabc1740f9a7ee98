"""A Redis primary that took over (promoted, restarted) issues versions above every one
MongoDB holds, with no operator command: the version floor and the write script's check
(core/floor.py, sdk/seeding.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import PyMongoError
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.servers import RedisServer, SecantusServer, replica_online
from tests.support.streams import running_worker
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import DatabaseUnavailable, WriteManyError
from writebehind.core.floor import FLOOR_COLLECTION, MARGIN_MS, floor_id
from writebehind.core.version import Version
from writebehind.sdk.seeding import PartitionSeeder
from writebehind.sink.bulk import MongoSink
from writebehind.sink.reapply import Outcome
from writebehind.tools.replay import ReplayOptions, ReplayRange, replay

pytestmark = pytest.mark.anyio

AHEAD_MS = 3_600_000
"""How far the lost primary's clock ran ahead of the promoted replica's."""


def _wb(server: RedisServer, mongo_db: Any, **options: Any) -> WriteBehind:
    return WriteBehind(
        redis_url=server.url,
        mongo=mongo_db,
        prefix=TEST_PREFIX,
        partitions=TEST_PARTITIONS,
        **options,
    )


async def _replid(client: Redis) -> bytes:
    return str((await client.info("replication"))["master_replid"]).encode()


async def _floor(mongo_db: Any) -> int | None:
    doc = await mongo_db[FLOOR_COLLECTION].find_one({"_id": floor_id(TEST_PREFIX)})
    return None if doc is None else int(doc["ms"])


async def _stored(mongo_db: Any, doc_id: str) -> tuple[Any, Version]:
    doc = await mongo_db["users"].find_one({"_id": doc_id})
    return doc["n"], Version.from_pair(doc["_wb"]["v"])


async def test_after_a_failover_to_a_replica_behind_the_next_write_wins(
    redis_factory: Callable[..., RedisServer], mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="writebehind.sdk")
    primary = redis_factory()
    replica = redis_factory("--replicaof", "127.0.0.1", str(primary.port))
    primary_client, replica_client = Redis.from_url(primary.url), Redis.from_url(replica.url)
    try:
        await wait_until(lambda: replica_online(primary_client), message="the replica online")
        # The replica is promoted before the primary takes the write below: the promoted
        # replica never gets it, and its clock is an hour behind the lost primary's.
        await replica_client.execute_command("REPLICAOF", "NO", "ONE")
        async with _wb(primary, mongo_db) as old:
            stream = old.keys.stream(old.keys.partition_of("users", "a"))
            seconds, _ = await primary_client.time()
            ahead = Version(int(seconds) * 1000 + AHEAD_MS, 0)
            await primary_client.xadd(stream, {"seed": "1"}, id=str(ahead), maxlen=0)
            lost = await old.collection("users").set("a", {"n": "from the lost primary"})
            assert lost > ahead
            async with running_worker(primary.url, mongo_db):
                await old.collection("users").wait_persisted(lost, timeout=20)
        assert await _stored(mongo_db, "a") == ("from the lost primary", lost)
        floor = await _floor(mongo_db)
        assert floor is not None and floor >= lost.ms  # raised by the worker, before the data

        # Producers and a worker switch to the promoted replica; nobody runs a command.
        async with _wb(replica, mongo_db) as new:
            newest = await new.collection("users").set("a", {"n": "after the failover"})
            assert newest > lost
            assert newest > Version(floor, 2**63 - 1)  # seeded above the floor
            assert f"versions from {floor + 1}-0, above the version floor" in caplog.text
            assert await replica_client.get(new.keys.seeded(0)) is None  # only where written
            async with running_worker(replica.url, mongo_db):
                await new.collection("users").wait_persisted(newest, timeout=20)
        assert await _stored(mongo_db, "a") == ("after the failover", newest)
    finally:
        await primary_client.aclose()
        await replica_client.aclose()


async def test_a_restarted_redis_is_seeded_once_and_writes_go_on(
    redis_factory: Callable[..., RedisServer], mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = redis_factory(appendonly=True)
    seeded: list[int] = []
    seed_one = PartitionSeeder._seed_one

    async def counted(self: PartitionSeeder, partition: int, mongo_timeout: float) -> None:
        seeded.append(partition)
        await seed_one(self, partition, mongo_timeout)

    monkeypatch.setattr(PartitionSeeder, "_seed_one", counted)
    async with _wb(server, mongo_db) as wb:
        users = wb.collection("users")
        partition = wb.keys.partition_of("users", "r")
        first = await users.set("r", {"n": 1})
        await users.set("r", {"n": 2})
        assert seeded == [partition]  # a fresh deployment: the first write seeds, once
        async with running_worker(server.url, mongo_db):
            await users.wait_persisted(first, timeout=20)
        floor = await _floor(mongo_db)
        assert floor is not None and floor >= first.ms + MARGIN_MS

        before = await _replid(wb.redis)
        server.stop()
        server.start()  # the same data (AOF), a new replication id
        assert await _replid(wb.redis) != before
        again = [await users.set("r", {"n": n}) for n in (3, 4)]
        assert seeded == [partition, partition]  # once per primary, not per write
        assert await wb.redis.get(wb.keys.seeded(partition)) == await _replid(wb.redis)
        assert all(v > Version(floor, 2**63 - 1) for v in again)
        assert await users.get("r") == {"_id": "r", "n": 4}
        async with running_worker(server.url, mongo_db):
            await users.wait_persisted(again[-1], timeout=20)
    assert (await _stored(mongo_db, "r"))[0] == 4


class _Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("update", "insert"):
            self.events.append(("started", event.command_name, str(event.command.get("update"))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name in ("update", "insert"):
            self.events.append(("succeeded", event.command_name, ""))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.events.append(("failed", event.command_name, ""))


async def test_the_worker_raises_the_floor_before_it_writes_the_data(
    redis: Redis, redis_server: RedisServer, mongo_url: str, database_name: str
) -> None:
    listener = _Commands()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, event_listeners=[listener])
    try:
        db = client[database_name]
        async with WriteBehind(
            redis=redis, mongo=db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
        ) as wb:
            users = wb.collection("users")
            version = await users.set("o", {"n": 1})
            listener.events.clear()  # the seeding's read is not what this test is about
            async with running_worker(redis_server.url, db):
                await users.wait_persisted(version, timeout=20)
        updates = [e for e in listener.events if e[0] == "started"]
        assert [e[2] for e in updates][:2] == [FLOOR_COLLECTION, "users"]
        # The floor's update was acknowledged before the data's was sent.
        floor_done = listener.events.index(("succeeded", "update", ""))
        assert floor_done < listener.events.index(("started", "update", "users"))
        assert await _floor(db) == version.ms + MARGIN_MS
    finally:
        await client.close()


async def test_data_is_not_written_while_the_floor_cannot_be(
    redis: Redis, redis_server: RedisServer, mongo_db: Any
) -> None:
    # A floor collection that refuses every document: the floor cannot be raised.
    await mongo_db.create_collection(
        FLOOR_COLLECTION, validator={"ms": {"$type": "string"}}, validationAction="error"
    )
    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
    ) as wb:
        users = wb.collection("users")
        version = await users.set("f", {"n": 1})
        async with running_worker(redis_server.url, mongo_db) as worker:
            await wait_until(
                lambda: _retried(worker), message="the worker to retry the refused floor"
            )
            assert await mongo_db["users"].find_one({"_id": "f"}) is None
            await mongo_db.command({"collMod": FLOOR_COLLECTION, "validator": {}})
            await users.wait_persisted(version, timeout=20)
    assert await _floor(mongo_db) == version.ms + MARGIN_MS


async def _retried(worker: Any) -> bool:
    return bool(worker.stats.retried)


async def test_mongodb_not_answering_while_seeding_raises_database_unavailable(
    redis: Redis, mongo_factory: Callable[[], SecantusServer]
) -> None:
    server = mongo_factory()
    client: AsyncMongoClient[Any] = AsyncMongoClient(server.url)
    try:
        async with WriteBehind(
            redis=redis, mongo=client["db"], prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
        ) as wb:
            await client["db"].command("ping")
            impatient = wb.collection("users", reads=ReadPolicy(mongo_timeout=1.0))
            server.pause()
            try:
                with pytest.raises(DatabaseUnavailable, match="seeded above the versions"):
                    await impatient.set("m", {"n": 1})
                stream = wb.keys.stream(wb.keys.partition_of("users", "m"))
                assert await redis.exists(stream) == 0  # nothing was written
            finally:
                server.resume()
            await wait_until(lambda: _answers(client), message="MongoDB to answer again")
            await wb.collection("users").set("m", {"n": 2})  # MongoDB back: seeded, written
    finally:
        await client.close()


async def _answers(client: Any) -> bool:
    try:
        await client["db"].command("ping")
    except PyMongoError:
        return False
    return True


async def test_write_through_raises_the_floor_before_its_own_write(
    redis: Redis, mongo_db: Any
) -> None:
    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
    ) as wb:
        users = wb.collection("users", mode="write_through")
        await users.get("w")  # the partition's first write seeds it: not what this test is about
        version = await users.set("w", {"n": 1})
    assert await _floor(mongo_db) == version.ms + MARGIN_MS
    assert (await _stored(mongo_db, "w"))[1] == version


async def test_set_many_seeds_the_refused_partitions_and_resends_only_their_items(
    redis: Redis, mongo_factory: Callable[[], SecantusServer]
) -> None:
    server = mongo_factory()
    client: AsyncMongoClient[Any] = AsyncMongoClient(server.url)
    try:
        async with WriteBehind(
            redis=redis, mongo=client["db"], prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
        ) as wb:
            users = wb.collection("users")
            impatient = wb.collection("users", reads=ReadPolicy(mongo_timeout=1.0))
            by_partition: dict[int, str] = {}
            for n in range(100):
                by_partition.setdefault(wb.keys.partition_of("users", f"u{n}"), f"u{n}")
            seeded_id, *unseeded_ids = (by_partition[p] for p in sorted(by_partition))
            await wb.seeder.seed([wb.keys.partition_of("users", seeded_id)], 5.0)

            server.pause()
            try:
                with pytest.raises(WriteManyError) as info:
                    await impatient.set_many([(i, {"n": 1}) for i in (seeded_id, *unseeded_ids)])
            finally:
                server.resume()
            await wait_until(lambda: _answers(client), message="MongoDB to answer again")
            made, *refused = info.value.results
            assert isinstance(made, Version)  # its partition was seeded: written
            assert all(isinstance(r, DatabaseUnavailable) for r in refused)

            versions = await users.set_many([(i, {"n": 2}) for i in (seeded_id, *unseeded_ids)])
            assert len(versions) == 1 + len(unseeded_ids)
            for doc_id in (seeded_id, *unseeded_ids):
                stream = wb.keys.stream(wb.keys.partition_of("users", doc_id))
                expected = 2 if doc_id == seeded_id else 1  # each write made once, no more
                assert await redis.xlen(stream) == expected
    finally:
        await client.close()


async def test_replay_raises_the_floor_before_it_writes(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    version = await wb.collection("users").set("p", {"n": 1})  # no worker: replay applies it
    sink = MongoSink(mongo_db, prefix=wb.keys.prefix)
    result = await replay(redis, sink, wb.keys, ReplayOptions(ReplayRange.parse("0", None)))
    assert result.report.total(Outcome.INSERTED) == 1
    assert sink.floor.raises == 1
    assert await _floor(mongo_db) == version.ms + MARGIN_MS
