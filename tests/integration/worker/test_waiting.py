"""`writebehind worker` started before its servers: it waits, says so, and then works.

What waiting cannot fix (an ``allkeys-*`` eviction policy, another partition
count, a write concern MongoDB refuses) ends it at once with one line.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.http import http_get
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer, SecantusServer, free_port
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


def count(worker: WorkerProcess, event: str) -> int:
    return worker.event_names().count(event)


def metrics_port(worker: WorkerProcess) -> int | None:
    for event in worker.events():
        if event.get("event") == "metrics_listening":
            return int(str(event["address"]).rsplit(":", 1)[1])
    return None


@pytest.fixture
def servers_not_yet_up() -> Iterator[tuple[RedisServer, SecantusServer]]:
    redis = RedisServer(port=free_port())
    mongo = SecantusServer(port=free_port())
    try:
        yield redis, mongo
    finally:
        redis.close()
        mongo.close()


async def test_a_worker_waits_for_redis_then_mongodb_then_works(
    tmp_path: Path, servers_not_yet_up: tuple[RedisServer, SecantusServer], database_name: str
) -> None:
    redis_server, mongo_server = servers_not_yet_up
    worker = WorkerProcess(
        redis_url=redis_server.url,
        mongo_url=mongo_server.url,
        database=database_name,
        log_path=tmp_path / "worker.log",
        backoff_base="20ms",
        backoff_cap="200ms",
    ).start()
    try:
        await wait_until(lambda: _true(count(worker, "waiting_for_redis") >= 3), message="retries")
        attempts = [e["attempt"] for e in worker.events() if e["event"] == "waiting_for_redis"]
        assert attempts[:3] == [1, 2, 3]
        assert worker.poll() is None
        port = await wait_until(lambda: _true(metrics_port(worker)), message="/healthz")
        assert (await http_get(port, "/healthz"))[0] == 200
        status, body = await http_get(port, "/readyz")
        assert status == 503 and "waiting for redis" in body, (status, body)

        redis_server.start()
        await wait_until(
            lambda: _true(count(worker, "waiting_for_mongodb") >= 2), message="MongoDB waits"
        )
        status, body = await http_get(port, "/readyz")
        assert status == 503 and "waiting for mongodb" in body, (status, body)

        mongo_server.start()
        await wait_until(lambda: _true("worker_started" in worker.event_names()), timeout=60)
        await wait_until(lambda: _ok(http_get(port, "/readyz")), message="/readyz 200 once started")
        mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.url)
        try:
            async with (
                Redis.from_url(redis_server.url) as client,
                WriteBehind(redis=client, mongo=mongo[database_name], prefix="t", partitions=4)
                as wb,
            ):  # fmt: skip
                docs = wb.collection("docs")
                await docs.wait_persisted(await docs.set("a", {"n": 1}), timeout=30)
        finally:
            await mongo.close()

        worker.send(signal.SIGTERM)
        assert await worker.wait_exit(within=30) == 0
        assert "Traceback" not in worker.output()
    finally:
        worker.close()


async def _true(value: Any) -> Any:
    return value


async def _ok(response: Any) -> bool:
    status, _ = await response
    return bool(status == 200)


def error_lines(worker: WorkerProcess) -> list[str]:
    return [line for line in worker.output().splitlines() if line.startswith("Error: ")]


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("allkeys", "allkeys-lru"),
        ("partitions", "Redis records 8"),
        ("write_concern", "--write-concern (WRITEBEHIND_WRITE_CONCERN)"),
        ("not_a_cluster", "leave out --redis-cluster (WRITEBEHIND_REDIS_CLUSTER)"),
    ],
)
async def test_what_waiting_cannot_fix_ends_the_worker_with_one_line(
    tmp_path: Path,
    redis_factory: Any,
    mongo_url: str,
    database_name: str,
    setup: str,
    needle: str,
) -> None:
    redis_server = redis_factory(
        *(("--maxmemory-policy", "allkeys-lru") if setup == "allkeys" else ())
    )
    if setup == "partitions":
        async with Redis.from_url(redis_server.url) as client:
            await client.hset("{t}:meta", "partitions", 8)
    flags: dict[str, Any] = {
        "write_concern": {"write_concern": "no_such_tag"},
        "not_a_cluster": {"redis_cluster": True},
    }.get(setup, {})
    worker = WorkerProcess(
        redis_url=redis_server.url,
        mongo_url=mongo_url,
        database=database_name,
        log_path=tmp_path / "worker.log",
        **flags,
    ).start()
    try:
        assert await worker.wait_exit(within=60) == 1, worker.output()
        [line] = error_lines(worker)
        assert needle in line, line
        assert "Traceback" not in worker.output()
        # JSON logs before the error line, and nothing after it.
        assert worker.output().rstrip().splitlines()[-1] == line
        for other in worker.output().splitlines()[:-1]:
            json.loads(other)
    finally:
        worker.close()


async def test_sigterm_while_waiting_exits_0_at_once(tmp_path: Path) -> None:
    worker = WorkerProcess(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        mongo_url=f"mongodb://127.0.0.1:{free_port()}/",
        database="never",
        log_path=tmp_path / "worker.log",
        backoff_cap="10s",
    ).start()
    try:
        await wait_until(lambda: _true(count(worker, "waiting_for_redis") >= 2))
        worker.send(signal.SIGTERM)
        assert await worker.wait_exit(within=15) == 0, worker.output()
        assert "Traceback" not in worker.output()
        assert "worker_started" not in worker.event_names()
    finally:
        worker.close()


async def test_a_worker_waits_for_a_redis_cluster_that_does_not_answer_yet(
    tmp_path: Path, mongo_url: str, database_name: str
) -> None:
    # redis-py raises RedisClusterUnreachableError, no ConnectionError: the worker used to
    # exit 1 at once with an "internal error".
    worker = WorkerProcess(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        mongo_url=mongo_url,
        database=database_name,
        log_path=tmp_path / "worker.log",
        redis_cluster=True,
        backoff_base="20ms",
        backoff_cap="200ms",
    ).start()
    try:
        await wait_until(lambda: _true(count(worker, "waiting_for_redis") >= 3), message="retries")
        assert worker.poll() is None, worker.output()
        worker.send(signal.SIGTERM)
        assert await worker.wait_exit(within=15) == 0, worker.output()
        assert "Traceback" not in worker.output()
    finally:
        worker.close()
