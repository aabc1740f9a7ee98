"""Fixtures: real servers, started once per session, and clean clients per test."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.cli import Cli
from tests.support.config import TEST_PARTITIONS, TEST_PREFIX, SpawnWorker, fast_settings
from tests.support.processes import WorkerProcess
from tests.support.servers import (
    RedisServer,
    SecantusServer,
    external_mongo_url,
)
from writebehind import WriteBehind
from writebehind.worker.runner import Worker


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (CI's timeout, ``kill``) stops the run like Ctrl-C, so fixtures still stop
    the servers they started: killed outright, pytest left them running for ever."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)


@pytest.fixture
def anyio_backend() -> str:
    # Both drivers are asyncio-only.
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    url = external_mongo_url()
    if url:
        yield url
        return
    with SecantusServer() as server:
        yield server.url


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Private ``redis-server`` processes for tests that reconfigure, kill or restart them."""
    started: list[RedisServer] = []

    def make(*extra: str, appendonly: bool = False) -> RedisServer:
        server = RedisServer(*extra, appendonly=appendonly)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def mongo_factory() -> Iterator[Callable[[], SecantusServer]]:
    """Private SecantusDB processes for tests that stop or restart MongoDB."""
    started: list[SecantusServer] = []

    def make() -> SecantusServer:
        server = SecantusServer()
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def database_name() -> str:
    return f"wbtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def mongo_client(mongo_url: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", serverSelectionTimeoutMS=10_000
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def mongo_db(mongo_client: AsyncMongoClient[Any], database_name: str) -> AsyncIterator[Any]:
    db = mongo_client[database_name]
    try:
        yield db
    finally:
        await mongo_client.drop_database(database_name)


@pytest.fixture
async def wb(redis: Redis, mongo_db: Any) -> AsyncIterator[WriteBehind]:
    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
    ) as client:
        yield client


@pytest.fixture
async def start_worker(
    redis_server: RedisServer, mongo_db: Any
) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    """Start in-process workers (each with its own Redis pool); all drain at teardown."""
    workers: list[Worker] = []
    clients: list[Redis] = []
    async with anyio.create_task_group() as tg:

        async def start(redis_url: str | None = None, **overrides: Any) -> Worker:
            client = Redis.from_url(redis_url or redis_server.url)
            clients.append(client)
            worker = Worker(client, mongo_db, fast_settings(**overrides))
            tg.start_soon(worker.run)
            with anyio.fail_after(30):
                await worker.started.wait()
            workers.append(worker)
            return worker

        yield start
        for worker in workers:
            worker.request_stop()
    for client in clients:
        await client.aclose()


@pytest.fixture
def spawn_worker(tmp_path: Path, redis_server: RedisServer) -> Iterator[SpawnWorker]:
    """Start ``writebehind worker`` subprocesses; every one is killed at teardown.

    ``crash_at=(point, n)`` starts one that kills itself at a crash point
    (tests/support/crashpoints.py).
    """
    started: list[WorkerProcess] = []

    def spawn(mongo_url: str, database: str, *, consumer: str, **flags: Any) -> WorkerProcess:
        flags.setdefault("batch_size", 100)
        flags.setdefault("linger", "2ms")
        proc = WorkerProcess(
            redis_url=redis_server.url,
            mongo_url=mongo_url,
            database=database,
            log_path=tmp_path / f"{consumer}.log",
            prefix=TEST_PREFIX,
            partitions=TEST_PARTITIONS,
            consumer=consumer,
            **flags,
        )
        started.append(proc)
        return proc.start()

    yield spawn
    for proc in started:
        proc.close()


@pytest.fixture
def cli(redis_server: RedisServer, mongo_url: str, database_name: str) -> Cli:
    """Runs ``writebehind <command> ...`` as a subprocess against the test servers."""
    return Cli(redis_server.url, mongo_url, database_name)
