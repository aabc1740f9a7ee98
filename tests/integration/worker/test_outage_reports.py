"""A MongoDB outage is visible at once: a log line, a summary at a steady interval, the end;
every retry counted, and how long writes have been failing exported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.http import http_get, sample
from tests.support.processes import WorkerProcess
from tests.support.seeding import seed_all
from tests.support.servers import RedisServer, SecantusServer
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


def events(worker: WorkerProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in worker.events() if e.get("event") == name]


async def test_a_mongodb_outage_is_logged_at_once_summarised_counted_and_ended(
    tmp_path: Path,
    redis: Redis,  # flushed: no other test's streams
    redis_server: RedisServer,
    mongo_factory: Any,
    database_name: str,
) -> None:
    mongo_server: SecantusServer = mongo_factory()
    worker = WorkerProcess(
        redis_url=redis_server.url,
        mongo_url=mongo_server.url,
        database=database_name,
        log_path=tmp_path / "worker.log",
        outage_report_interval="1s",
        backoff_cap="200ms",
    ).start()
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.url)
    try:
        async with (
            Redis.from_url(redis_server.url) as client,
            WriteBehind(
                redis=client, mongo=mongo[database_name], prefix=TEST_PREFIX,
                partitions=TEST_PARTITIONS,
            ) as wb,
        ):  # fmt: skip
            docs = wb.collection("docs")
            await wait_until(lambda: _is(events(worker, "worker_started")), timeout=60)
            await docs.wait_persisted(await docs.set("before", {"n": 0}), timeout=30)
            await seed_all(wb)  # a partition's first write on a primary reads MongoDB
            port = int(str(events(worker, "metrics_listening")[0]["address"]).rsplit(":", 1)[1])

            mongo_server.stop()
            for i in range(5):
                await docs.set(f"during-{i}", {"n": i})

            # The first failure, at once: the server, the error, what waits.
            [first] = await wait_until(
                lambda: _is(events(worker, "mongodb_unavailable")), timeout=20
            )
            assert first["records_waiting"] >= 1, first
            assert f"127.0.0.1:{mongo_server.port}" in first["mongo"], first
            assert first["error"], first
            # Then a summary at the interval, not a line per retry.
            await wait_until(
                lambda: _is(len(events(worker, "mongodb_still_unavailable")) >= 2), timeout=30
            )
            _, metrics = await http_get(port, "/metrics")
            assert sample(metrics, "writebehind_records_retried_total") >= 1
            assert sample(metrics, "writebehind_mongodb_outage_seconds") > 0
            assert sample(metrics, "writebehind_last_successful_write_age_seconds") > 0
            assert sample(metrics, "writebehind_worker_start_time_seconds") > 0

            mongo_server.start()
            [ended] = await wait_until(lambda: _is(events(worker, "mongodb_recovered")), timeout=60)
            assert ended["failing_for"] > 0 and ended["attempts"] >= 2, ended
            for i in range(5):
                found = await mongo[database_name].docs.find_one({"_id": f"during-{i}"})
                assert found is not None and found["n"] == i
            _, metrics = await http_get(port, "/metrics")
            assert sample(metrics, "writebehind_mongodb_outage_seconds") == 0
        assert "Traceback" not in worker.output()
    finally:
        worker.close()
        await mongo.close()


async def _is(value: Any) -> Any:
    return value
