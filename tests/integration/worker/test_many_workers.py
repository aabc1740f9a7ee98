"""Many worker processes under load: adding, killing and stopping workers rebalances safely.

Every worker reads every partition through the one consumer group; Redis hands
each record to one consumer, so adding a worker spreads records with no
assignment step, and a worker that dies leaves its pending records to be
claimed (``XAUTOCLAIM``) once idle for ``--claim-idle``. A producer writes
throughout while the test starts one worker, adds a second and a third, kills
one with SIGKILL while it holds records, and stops another with SIGTERM. Then:

- nothing acknowledged is lost: every document ends in MongoDB at its newest
  acknowledged version, nothing is left pending, nothing is dead-lettered,
  and at the kill nothing was acknowledged that MongoDB did not hold;
- records are delivered fresh once each (the group's ``entries-read``), and
  the only re-deliveries are the claims of the killed worker's records, which
  the version guard makes harmless;
- the killed worker's records are applied within the claim idle time (plus
  one claim interval and a margin for a shared two-core machine), and the
  group's progress never pauses longer than that meanwhile;
- every worker got a share of the records.
"""

from __future__ import annotations

import signal
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX, SpawnWorker
from tests.support.ledger import (
    GROUP,
    Ledger,
    acked_count,
    check_acked_are_persisted,
    dead_letter_counts,
    group_views,
    wait_all_landed,
    wait_settled,
)
from tests.support.processes import WorkerProcess, wait_stopped
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)
CLAIM_IDLE = 2.0
"""Seconds (``--claim-idle 2.0``)."""
CLAIM_INTERVAL = 0.2
MARGIN = 2.0
"""Seconds of slack for process scheduling on a two-core machine shared with other tests."""
FLAGS: dict[str, Any] = {
    "claim_idle": CLAIM_IDLE,
    "claim_interval": CLAIM_INTERVAL,
    "drain_timeout": 10,
    "batch_size": 50,
}


class Progress:
    """Samples how many records the group has acknowledged, to find pauses."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []

    async def run(self, redis: Redis, stop: anyio.Event) -> None:
        while not stop.is_set():
            self.samples.append((anyio.current_time(), await acked_count(redis, KEYS)))
            await anyio.sleep(0.05)

    def longest_pause(self, since: float, until: float) -> float:
        """The longest time in [since, until] the acknowledged count stood still."""
        longest, last_change, last_count = 0.0, since, None
        for at, count in self.samples:
            if at < since or at > until:
                continue
            if count != last_count:
                longest = max(longest, at - last_change)
                last_change, last_count = at, count
        return max(longest, until - last_change)


async def started(proc: WorkerProcess) -> None:
    await wait_until(
        lambda: anyio.to_thread.run_sync(lambda: "worker_started" in proc.event_names()),
        timeout=30,
        message=f"{proc.consumer} started",
    )


async def acked_grows(redis: Redis, by: int) -> None:
    target = await acked_count(redis, KEYS) + by

    async def grown() -> bool:
        return await acked_count(redis, KEYS) >= target

    await wait_until(grown, timeout=60, message=f"{by} more records acknowledged")


async def pending_of(redis: Redis, consumer: str) -> list[tuple[int, str]]:
    """(partition, entry id) of every record ``consumer`` holds pending."""
    held: list[tuple[int, str]] = []
    for p in range(TEST_PARTITIONS):
        rows = await redis.xpending_range(
            KEYS.stream(p), GROUP, "-", "+", 100_000, consumername=consumer
        )
        held += [(p, r["message_id"].decode()) for r in rows]
    return held


async def kill_holding_records(redis: Redis, proc: WorkerProcess) -> list[tuple[int, str]]:
    """SIGKILL ``proc`` at a moment it holds pending records; return those records.

    The process is paused (SIGSTOP) to look at what it holds; if nothing, it is
    let go on and paused again a little later, so the kill lands mid-batch.
    """
    for _ in range(500):
        proc.send(signal.SIGSTOP)
        await wait_stopped(proc.pid)  # the signal is delivered asynchronously
        held = await pending_of(redis, proc.consumer)
        if held:
            proc.kill()
            return held
        proc.send(signal.SIGCONT)
        await anyio.sleep(0.01 + 0.002 * (_ % 7))
    raise AssertionError(f"{proc.consumer} never held a pending record when paused")


def stopped_stats(proc: WorkerProcess) -> dict[str, Any]:
    stopped = [e for e in proc.events() if e.get("event") == "worker_stopped"]
    assert stopped, f"{proc.consumer} logged no worker_stopped:\n{proc.output()[-2000:]}"
    return stopped[-1]


async def test_workers_join_die_and_leave_under_load(
    wb: WriteBehind,
    redis: Redis,
    mongo_db: Any,
    mongo_url: str,
    database_name: str,
    spawn_worker: SpawnWorker,
) -> None:
    ledger = Ledger(wb.keys)
    coll = wb.collection(ledger.collection)
    progress = Progress()
    stop_producing, stop_sampling = anyio.Event(), anyio.Event()

    def spawn(name: str) -> WorkerProcess:
        return spawn_worker(mongo_url, database_name, consumer=name, **FLAGS)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: ledger.produce(coll, stop_producing, docs=300, chunk=20, pause=0.02))
        tg.start_soon(progress.run, redis, stop_sampling)

        first = spawn("w1")
        await started(first)
        await acked_grows(redis, 200)
        loaded_from = anyio.current_time()

        doomed, leaving = spawn("w2"), spawn("w3")
        await started(doomed)
        await started(leaving)
        await acked_grows(redis, 400)

        held = await kill_holding_records(redis, doomed)
        killed_at = anyio.current_time()
        assert doomed.poll() == -signal.SIGKILL
        # Writes acknowledged so far (the producer goes on adding to the ledger).
        so_far = Ledger(ledger.keys, ledger.collection, owner=dict(ledger.owner))
        counts = await check_acked_are_persisted(redis, mongo_db, so_far)
        assert counts["pending"] >= len(held)

        async def recovered() -> bool:
            views = await group_views(redis, KEYS)
            return all(views[p].is_acked(eid) for p, eid in held)

        await wait_until(recovered, timeout=60, message="the killed worker's records applied")
        recovery = anyio.current_time() - killed_at
        assert recovery <= CLAIM_IDLE + CLAIM_INTERVAL + MARGIN, (
            f"the killed worker's {len(held)} records waited {recovery:.2f}s"
        )

        leaving.send(signal.SIGTERM)
        assert await leaving.wait_exit(within=30) == 0
        assert not await pending_of(redis, "w3"), "a graceful stop left records pending"
        await acked_grows(redis, 200)  # w1 alone carries on
        stop_producing.set()
        produced_until = anyio.current_time()

        await wait_all_landed(mongo_db, ledger)
        await wait_settled(redis, KEYS)
        stop_sampling.set()

    assert await dead_letter_counts(redis, KEYS) == [0] * TEST_PARTITIONS
    pause = progress.longest_pause(loaded_from, produced_until)
    assert pause <= CLAIM_IDLE + MARGIN, f"progress stood still for {pause:.2f}s"

    first.send(signal.SIGTERM)
    assert await first.wait_exit(within=30) == 0
    survivors = {p.consumer: stopped_stats(p) for p in (first, leaving)}
    claimed = sum(int(s["claimed"]) for s in survivors.values())
    fresh = {name: int(s["read"]) - int(s["claimed"]) for name, s in survivors.items()}
    delivered = 0
    for p in range(TEST_PARTITIONS):
        groups = await redis.xinfo_groups(KEYS.stream(p))
        delivered += sum(int(g["entries-read"]) for g in groups if g["name"] == GROUP.encode())
    fresh["w2"] = delivered - sum(fresh.values())  # the killed worker left no log
    # Each record was delivered fresh to one worker; the only second deliveries
    # are claims, and claims were of the killed worker's records only.
    assert delivered == len(ledger.owner)
    assert len(held) <= claimed <= len(held), (
        f"claimed {claimed} records; the killed worker held {len(held)}"
    )
    assert all(n > 0 for n in fresh.values()), f"a worker got no records: {fresh}"
    print(  # shown with -s: what this run measured
        f"held at kill {len(held)}, applied {recovery:.2f}s after the kill, longest pause "
        f"{pause:.2f}s, fresh records per worker {fresh}, claimed {claimed}"
    )
