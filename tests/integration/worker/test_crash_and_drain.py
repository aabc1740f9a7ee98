"""Workers that crash, are signalled, or lose MongoDB: no acknowledged write is lost.

Subprocess workers (``python -m writebehind.cli worker``) get real ``kill -9``,
SIGTERM and SIGINT; in-process workers are used where a test needs the
worker's counters or the fast claim interval of ``fast_settings``. Each test
checks the same three things at the end: every document in MongoDB at its
newest acknowledged version, nothing pending in the group, nothing
dead-lettered.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX, SpawnWorker
from tests.support.ledger import (
    Ledger,
    acked_among,
    acked_count,
    check_acked_are_persisted,
    consumer_pending,
    dead_letter_counts,
    entries_since,
    pending_counts,
    wait_all_landed,
    wait_settled,
)
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer, SecantusServer
from tests.support.streams import running_worker
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)
NO_DEAD_LETTERS = [0] * TEST_PARTITIONS


@pytest.fixture
async def private_mongo(
    mongo_factory: Callable[[], SecantusServer],
) -> AsyncIterator[tuple[SecantusServer, Any]]:
    """A SecantusDB of this test's own, to stop and restart, and a database on it."""
    server = mongo_factory()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        server.url, uuidRepresentation="standard", serverSelectionTimeoutMS=2000
    )
    try:
        yield server, client["wbcrash"]
    finally:
        await client.close()


async def assert_clean_finish(redis: Redis, db: Any, ledger: Ledger) -> None:
    """Newest versions everywhere, nothing pending or unread, nothing dead-lettered."""
    await wait_all_landed(db, ledger)
    await wait_settled(redis, KEYS)
    assert await dead_letter_counts(redis, KEYS) == NO_DEAD_LETTERS


async def test_kill_9_mid_batch_then_a_new_worker_reclaims_everything(
    wb: WriteBehind,
    redis: Redis,
    mongo_db: Any,
    mongo_url: str,
    database_name: str,
    spawn_worker: SpawnWorker,
    start_worker: Any,
) -> None:
    ledger = Ledger(wb.keys)
    docs = wb.collection(ledger.collection)
    await ledger.backlog(docs, writes=3000, docs=300)
    victim = spawn_worker(mongo_url, database_name, consumer="victim")

    async def mid_drain() -> bool:
        return (
            await acked_count(redis, KEYS) >= 300
            and await consumer_pending(redis, KEYS, "victim") > 0
        )

    await wait_until(mid_drain, timeout=30, interval=0.005, message="victim part-way through")
    assert victim.poll() is None, victim.output()[-2000:]
    assert victim.kill() == -signal.SIGKILL
    held = await consumer_pending(redis, KEYS, "victim")
    assert held > 0, "killed between batches: the reclaim path would go untested"
    counts = await check_acked_are_persisted(redis, mongo_db, ledger)
    assert 0 < counts["acked"] < 3000
    assert "worker_stopped" not in victim.event_names()

    # Newer writes land while the dead consumer's older records wait to be
    # reclaimed: applying those afterwards must not roll anything back.
    await ledger.backlog(docs, writes=600, docs=300)
    worker = await start_worker(claim_idle=1.0)
    await assert_clean_finish(redis, mongo_db, ledger)
    assert await consumer_pending(redis, KEYS, "victim") == 0
    assert worker.stats.claimed >= held
    assert worker.stats.dead_lettered == 0


async def test_sigterm_under_load_drains_acks_and_exits_0(
    wb: WriteBehind,
    redis: Redis,
    mongo_db: Any,
    mongo_url: str,
    database_name: str,
    spawn_worker: SpawnWorker,
    start_worker: Any,
) -> None:
    drain_timeout = 10.0
    ledger = Ledger(wb.keys)
    docs = wb.collection(ledger.collection)
    await ledger.backlog(docs, writes=2000, docs=300)
    proc = spawn_worker(mongo_url, database_name, consumer="drainer", drain_timeout=drain_timeout)

    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(ledger.produce, docs, stop, docs=300))

        async def busy() -> bool:
            return (
                await acked_count(redis, KEYS) >= 300
                and await consumer_pending(redis, KEYS, "drainer") > 0
            )

        await wait_until(busy, timeout=30, interval=0.005, message="drainer busy")
        proc.send(signal.SIGTERM)
        signalled = anyio.current_time()
        code = await proc.wait_exit(within=drain_timeout + 5)
        elapsed = anyio.current_time() - signalled
        stop.set()
    await ledger.write_many(docs, list(range(10)))  # after the exit: surely undelivered

    assert code == 0, proc.output()[-3000:]
    assert elapsed < drain_timeout
    names = proc.event_names()
    assert "draining" in names
    assert "drain_timeout_reached" not in names
    stopped = [e for e in proc.events() if e.get("event") == "worker_stopped"]
    assert len(stopped) == 1
    assert stopped[0]["forced"] is False
    # In-flight batches were finished and acknowledged, not abandoned.
    assert await consumer_pending(redis, KEYS, "drainer") == 0
    counts = await check_acked_are_persisted(redis, mongo_db, ledger)
    assert counts["acked"] == stopped[0]["persisted"]
    assert counts["pending"] == 0
    assert counts["undelivered"] >= 10

    await start_worker()
    await assert_clean_finish(redis, mongo_db, ledger)


async def stall_on_mongodb_outage(
    redis: Redis,
    server: SecantusServer,
    db: Any,
    spawn_worker: SpawnWorker,
    consumer: str,
    drain_timeout: float,
) -> tuple[WorkerProcess, Ledger, int]:
    """A subprocess worker holding records it cannot persist: MongoDB is stopped under it.

    Returns the worker, the ledger, and how many ledger entries predate the outage.
    """
    wb = WriteBehind(redis=redis, mongo=db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS)
    ledger = Ledger(wb.keys)
    docs = wb.collection(ledger.collection)
    await ledger.backlog(docs, writes=400, docs=100)
    proc = spawn_worker(server.url, "wbcrash", consumer=consumer, drain_timeout=drain_timeout)
    # Everything acked: the worker runs, and its signal handlers are in place.
    await wait_until(lambda: acked_at_least(redis, 400), timeout=30, message="first records acked")
    await anyio.to_thread.run_sync(server.stop)
    mark = len(ledger.owner)
    await ledger.backlog(docs, writes=400, docs=100)
    await wait_until(
        lambda: consumer_has_pending(redis, consumer),
        timeout=30,
        message="records delivered during the outage",
    )
    assert proc.poll() is None, proc.output()[-3000:]
    return proc, ledger, mark


async def acked_at_least(redis: Redis, count: int) -> bool:
    return await acked_count(redis, KEYS) >= count


async def logged(proc: WorkerProcess, event: str) -> bool:
    return event in proc.event_names()


async def consumer_has_pending(redis: Redis, consumer: str) -> bool:
    return await consumer_pending(redis, KEYS, consumer) > 0


async def test_second_signal_exits_at_once_and_acks_nothing_unsaved(
    redis: Redis,
    redis_server: RedisServer,
    private_mongo: tuple[SecantusServer, Any],
    spawn_worker: SpawnWorker,
) -> None:
    server, db = private_mongo
    proc, ledger, mark = await stall_on_mongodb_outage(
        redis, server, db, spawn_worker, "impatient", drain_timeout=30.0
    )
    proc.send(signal.SIGTERM)
    await wait_until(lambda: logged(proc, "draining"), timeout=10, message="first signal handled")
    proc.send(signal.SIGINT)
    signalled = anyio.current_time()
    code = await proc.wait_exit(within=10)
    elapsed = anyio.current_time() - signalled

    assert code == 1, proc.output()[-3000:]
    assert elapsed < 5, f"second signal took {elapsed:.1f}s to stop the worker"
    assert "second_signal_exiting_now" in proc.event_names()
    assert await consumer_pending(redis, KEYS, "impatient") > 0
    assert await acked_among(redis, ledger, entries_since(ledger, mark)) == []

    await anyio.to_thread.run_sync(server.start)
    counts = await check_acked_are_persisted(redis, db, ledger)
    assert counts["acked"] >= mark
    async with running_worker(redis_server.url, db) as worker:
        await assert_clean_finish(redis, db, ledger)
    assert worker.stats.claimed > 0


async def test_sigterm_with_mongodb_down_exits_0_at_the_drain_timeout(
    redis: Redis,
    redis_server: RedisServer,
    private_mongo: tuple[SecantusServer, Any],
    spawn_worker: SpawnWorker,
) -> None:
    drain_timeout = 3.0
    server, db = private_mongo
    proc, ledger, mark = await stall_on_mongodb_outage(
        redis, server, db, spawn_worker, "deadline", drain_timeout=drain_timeout
    )
    proc.send(signal.SIGTERM)
    signalled = anyio.current_time()
    code = await proc.wait_exit(within=drain_timeout + 10)
    elapsed = anyio.current_time() - signalled

    assert code == 0, proc.output()[-3000:]
    assert drain_timeout - 0.1 <= elapsed <= drain_timeout + 5
    assert "drain_timeout_reached" in proc.event_names()
    held = await consumer_pending(redis, KEYS, "deadline")
    assert held > 0
    assert sum(await pending_counts(redis, KEYS)) == held
    assert await acked_among(redis, ledger, entries_since(ledger, mark)) == []

    await anyio.to_thread.run_sync(server.start)
    await check_acked_are_persisted(redis, db, ledger)
    async with running_worker(redis_server.url, db) as worker:
        await assert_clean_finish(redis, db, ledger)
    assert worker.stats.claimed >= held


async def test_mongodb_outage_is_waited_out_while_producers_keep_writing(
    redis: Redis,
    redis_server: RedisServer,
    private_mongo: tuple[SecantusServer, Any],
) -> None:
    outage = 10.0
    server, db = private_mongo
    wb = WriteBehind(redis=redis, mongo=db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS)
    ledger = Ledger(wb.keys)
    docs = wb.collection(ledger.collection)
    async with running_worker(redis_server.url, db) as worker:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(ledger.produce, docs, stop, docs=200))
            await wait_until(
                lambda: acked_at_least(redis, 200), timeout=30, message="records flowing"
            )

            await anyio.to_thread.run_sync(server.stop)
            down_since = anyio.current_time()
            mark = len(ledger.owner)
            await wait_until(
                lambda: consumer_has_pending(redis, worker.settings.consumer),
                timeout=30,
                message="records held during the outage",
            )
            # The outage itself: its length is the point, nothing is awaited.
            await anyio.sleep(max(0.0, outage - (anyio.current_time() - down_since)))

            during = entries_since(ledger, mark)
            assert len(during) > 100, "producers stalled during the outage"
            assert await acked_among(redis, ledger, during) == []
            assert await dead_letter_counts(redis, KEYS) == NO_DEAD_LETTERS
            # Dirty cache entries never expire (reads must not fall back to stale MongoDB).
            for partition, entry_id in during[-20:]:
                doc_id = ledger.owner[(partition, entry_id)]
                key = KEYS.cache(partition, ledger.collection, doc_id)
                assert await redis.ttl(key) == -1

            await anyio.to_thread.run_sync(server.start)
            await wait_until(
                lambda: acked_at_least(redis, mark + len(during)),
                timeout=30,
                message="the outage's records persisted",
            )
            stop.set()
        await check_acked_are_persisted(redis, db, ledger)
        await assert_clean_finish(redis, db, ledger)
    assert worker.stats.retried > 0
    assert worker.stats.dead_lettered == 0
