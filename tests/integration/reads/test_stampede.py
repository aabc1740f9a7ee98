"""Stampede control across processes: 4 processes x 50 gets of a cold document, one MongoDB read."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.processes import REPO_ROOT
from tests.support.reads import reader, slow_finds
from tests.support.servers import RedisServer
from tests.support.streams import cache_key
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.scripts_read import READ
from writebehind.sdk.reading.flights import Load

pytestmark = pytest.mark.anyio

PROCESSES, GETS = 4, 50
# Beyond each get's own read (one READ script call, re-sent as EVAL with the
# script's text if Redis had not cached it yet), a process may send
# this many commands in all, however long it waits: the lease attempt, SUBSCRIBE,
# the look after the subscription is confirmed, the look after the announcement,
# and the new connection's CLIENT SETINFO pair; or LEASE + FILL for the loader.
# Polling every 10 ms for the 200 ms load would alone send about 20.
EXTRA_PER_PROCESS = 8


def _spawn(redis_url: str, mongo_url: str, database: str, app: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    args = [redis_url, mongo_url, database, "cold", str(GETS), app]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.read_stampede", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


class Monitor:
    """The commands clients send (Redis MONITOR), without those run inside scripts."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.commands: list[str] = []
        self.ready = anyio.Event()

    async def run(self) -> None:
        async with self.redis.monitor() as monitor:
            self.ready.set()
            while True:
                seen = await monitor.next_command()
                if seen.get("client_type") != "lua" and "lua" not in str(
                    seen.get("client_address")
                ):
                    self.commands.append(str(seen["command"]))

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for command in self.commands:
            name = command.split(" ")[0].upper()
            found[name] = found.get(name, 0) + 1
        return found

    def reads(self) -> tuple[int, int]:
        """READ script calls by sha, and those re-sent with its text (after NOSCRIPT)."""
        sha = hashlib.sha1(READ.encode()).hexdigest()
        by_sha = sum(1 for c in self.commands if c.upper().startswith(f"EVALSHA {sha.upper()} "))
        by_text = sum(1 for c in self.commands if c.startswith("EVAL ") and "no-writes" in c)
        return by_sha, by_text


async def test_four_processes_make_one_mongodb_read(
    redis_server: RedisServer, redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    await mongo_db["users"].insert_one({"_id": "cold", "name": "Ada", "_wb": {"v": [3, 1]}})
    procs = [_spawn(redis_server.url, mongo_url, mongo_db.name, "stampede") for _ in range(4)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
            assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
        monitor = Monitor(redis)
        async with slow_finds(mongo_client, "stampede", 200), anyio.create_task_group() as tg:
            tg.start_soon(monitor.run)
            await monitor.ready.wait()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            outputs = [await anyio.to_thread.run_sync(p.communicate, None, 60) for p in procs]
            tg.cancel_scope.cancel()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["finds"] for r in results) <= 1, results
    assert all(r["n"] == GETS for r in results)
    answers = {a for r in results for a in r["answers"]}
    assert answers == {json.dumps({"_id": "cold", "name": "Ada"}, sort_keys=True)}
    counts = monitor.counts()
    by_sha, by_text = monitor.reads()
    assert by_sha == PROCESSES * GETS and by_text <= by_sha, (by_sha, by_text, counts)
    extra = len(monitor.commands) - by_sha - by_text
    assert extra <= PROCESSES * EXTRA_PER_PROCESS, str(counts)


async def test_a_waiter_past_lock_timeout_loads_itself(
    wb: WriteBehind, redis: Redis, mongo_url: str, mongo_db: Any
) -> None:
    """A lease held by a process that froze: the others wait ``lock_timeout``, then load."""
    await mongo_db["users"].insert_one({"_id": "held", "n": 1, "_wb": {"v": [2, 0]}})
    place = cache_key(wb.keys, "users", "held").replace(":doc:", ":lease:")
    await redis.set(place, "frozen-holder", px=60_000)
    policy = ReadPolicy(lock_timeout=0.3)
    async with reader(redis, mongo_url, mongo_db.name, "waiter", reads=policy) as (other, finds):
        assert await other.collection("users").get("held") == {"_id": "held", "n": 1}
        assert finds.count("users") == 1
    assert await redis.get(place) == b"frozen-holder"  # not its lease to release
    assert await redis.hget(cache_key(wb.keys, "users", "held"), "v") == b"2-0"


async def test_a_failed_load_reaches_every_caller_and_is_not_cached(
    redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    from tests.support.streams import fail_point

    failing = {"failCommands": ["find"], "errorCode": 2, "appName": "failing"}
    async with reader(redis, mongo_url, mongo_db.name, "failing") as (wb, finds):
        users = wb.collection("users")
        async with fail_point(mongo_client, {"times": 1}, failing):
            results: list[Any] = []

            async def one() -> None:
                try:
                    results.append(await users.get("f"))
                except Exception as exc:
                    results.append(exc)

            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(one)
        assert finds.count("users") == 1
        assert len(results) == 10 and all(isinstance(r, Exception) for r in results), results
        lease = cache_key(wb.keys, "users", "f").replace(":doc:", ":lease:")
        assert await redis.exists(lease) == 0  # released for the next reader
        assert await users.get("f") is None  # loaded again, not the cached error
        assert finds.count("users") == 2


async def test_cancelling_the_first_caller_does_not_cancel_the_load(
    redis: Redis,
    mongo_url: str,
    mongo_db: Any,
    mongo_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await mongo_db["users"].insert_one({"_id": "c", "n": 1, "_wb": {"v": [5, 0]}})
    async with (
        reader(redis, mongo_url, mongo_db.name, "cancelled") as (wb, finds),
        slow_finds(mongo_client, "cancelled", 500),
    ):
        users = wb.collection("users")
        got: list[Any] = []
        flights = _count_flights(wb, monkeypatch)

        async def one() -> None:
            got.append(await users.get("c"))

        async def all_joined() -> bool:  # the first caller's and the three others'
            return flights[0] >= 4

        async with anyio.create_task_group() as tg:
            first = anyio.CancelScope()
            tg.start_soon(_run_in, first, users)
            await wait_until(lambda: _sent(finds), message="the first caller's find")
            for _ in range(3):
                tg.start_soon(one)
            await wait_until(all_joined, timeout=10, message="the three joining the load")
            first.cancel()
        assert got == [{"_id": "c", "n": 1}] * 3
        assert finds.count("users") == 1
        assert await redis.hget(cache_key(wb.keys, "users", "c"), "v") == b"5-0"


def _count_flights(wb: WriteBehind, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the misses that reach ``wb``'s in-process flights (a one-item list, updated).

    A caller counted here waits on the load in flight: it joins it in the same
    step, without yielding to the event loop.
    """
    count = [0]
    start = wb.read_flights.start

    def counted(keys: Sequence[str], load: Load) -> dict[str, asyncio.Future[Any]]:
        count[0] += 1
        return start(keys, load)

    monkeypatch.setattr(wb.read_flights, "start", counted)
    return count


async def _run_in(scope: anyio.CancelScope, users: Any) -> None:
    with scope:
        await users.get("c")
        raise AssertionError("the first caller was cancelled and must not return")


async def _sent(finds: Any) -> bool:
    return bool(finds.count("users") > 0)


def _reads(level: str, outcome: str) -> float:
    labels = {"collection": "users", "level": level, "outcome": outcome}
    return REGISTRY.get_sample_value("writebehind_sdk_reads_total", labels) or 0.0


async def test_another_process_waits_for_the_fill_and_is_woken(
    redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    """Two clients (two processes' worth: their own flights): B finds A's lease, sleeps
    until A's fill is announced, and answers from the entry, reading MongoDB not at all."""
    await mongo_db["users"].insert_one({"_id": "w", "n": 1, "_wb": {"v": [6, 0]}})
    before = {k: _reads(*k) for k in (("lease", "wait"), ("lease", "woken"), ("redis", "waited"))}
    async with (
        reader(redis, mongo_url, mongo_db.name, "loader") as (a, a_finds),
        reader(redis, mongo_url, mongo_db.name, "waiter") as (b, b_finds),
        slow_finds(mongo_client, "loader", 500),
    ):
        got: dict[str, Any] = {}

        async def read(name: str, client: WriteBehind) -> None:
            got[name] = await client.collection("users").get("w")

        async with anyio.create_task_group() as tg:
            tg.start_soon(read, "a", a)
            await wait_until(lambda: _sent(a_finds), message="A's find")
            tg.start_soon(read, "b", b)
        assert got == {"a": {"_id": "w", "n": 1}, "b": {"_id": "w", "n": 1}}
        assert (a_finds.count("users"), b_finds.count("users")) == (1, 0)
    for key, value in before.items():
        assert _reads(*key) == value + 1, key
