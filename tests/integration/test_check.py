"""`writebehind check` against real servers: safe, unsafe and unreachable deployments."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def run_check(redis_url: str, mongo_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "writebehind.cli", "check", "--redis-url", redis_url,
         "--mongo-url", mongo_url, "--database", "checkdb", "--prefix", "chk",
         "--partitions", "4", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_safe_deployment_passes_with_warnings(
    redis_factory: Callable[..., RedisServer], mongo_url: str
) -> None:
    server = redis_factory()  # no persistence: a warning, not a failure
    result = run_check(server.url, mongo_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    redis reachable" in result.stdout
    assert "WARN  redis persistence" in result.stdout
    assert "ok    mongodb write concern" in result.stdout
    assert "WARN  consumer group" in result.stdout  # no worker yet


def with_worker_groups(server: RedisServer) -> Any:
    """A sync client to ``server``, whose four streams have the workers' group."""
    import redis as redis_sync

    client = redis_sync.Redis.from_url(server.url)
    for p in range(4):
        client.xgroup_create(f"{{chk:p{p}}}:stream", "writebehind", id="0", mkstream=True)
    return client


def test_aof_redis_with_groups_reports_their_state(
    redis_factory: Callable[..., RedisServer], mongo_url: str
) -> None:
    server = redis_factory(appendonly=True)
    client = with_worker_groups(server)
    client.xadd("{chk:p0}:stream", {"op": "set"})
    client.close()
    result = run_check(server.url, mongo_url, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    levels = {f["check"]: f["level"] for f in report["findings"]}
    assert report["ok"] is True
    assert levels["redis persistence"] == "ok"
    assert levels["consumer group"] == "ok"
    group = next(f for f in report["findings"] if f["check"] == "consumer group")
    assert "1 lag" in group["detail"]
    assert levels["other consumer groups"] == "ok"


def test_another_consumer_group_is_reported(
    redis_factory: Callable[..., RedisServer], mongo_url: str
) -> None:
    server = redis_factory(appendonly=True)
    client = with_worker_groups(server)
    client.xgroup_create("{chk:p2}:stream", "debugging", id="0")
    client.close()
    result = run_check(server.url, mongo_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "WARN  other consumer groups: 'debugging' on partitions [2]: trimming keeps what "
        "they have not read; destroy them if abandoned" in result.stdout
    )


def test_allkeys_eviction_fails(redis_factory: Callable[..., RedisServer], mongo_url: str) -> None:
    server = redis_factory("--maxmemory-policy", "allkeys-lru")
    result = run_check(server.url, mongo_url)
    assert result.returncode == 1
    assert "FAIL  redis eviction policy" in result.stdout
    assert "allkeys-lru" in result.stdout


def test_partition_count_mismatch_fails(
    redis_factory: Callable[..., RedisServer], mongo_url: str
) -> None:
    import redis as redis_sync

    server = redis_factory()
    redis_sync.Redis.from_url(server.url).hset("{chk}:meta", "partitions", 8)
    result = run_check(server.url, mongo_url)
    assert result.returncode == 1
    assert "FAIL  partition count: configured 4, Redis records 8" in result.stdout


def test_unreachable_servers_fail_without_printing_passwords(mongo_url: str) -> None:
    dead = free_port()
    result = run_check(
        f"redis://:s3cret-pw@127.0.0.1:{dead}/0",
        f"mongodb://user:s3cret-pw@127.0.0.1:{dead}/?serverSelectionTimeoutMS=300",
    )
    assert result.returncode == 1
    assert "FAIL  redis reachable" in result.stdout
    assert "FAIL  mongodb reachable" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr


def test_unsatisfiable_write_concern_fails(
    redis_factory: Callable[..., RedisServer], mongo_url: str
) -> None:
    server = redis_factory()
    result = run_check(server.url, mongo_url, "--write-concern", "7")  # one node cannot ack 7
    if result.returncode == 0:
        pytest.skip("this MongoDB-wire server accepts w:7 on a single node; a mongod refuses it")
    assert "FAIL  mongodb write concern" in result.stdout


def test_an_unreachable_mongodb_is_named_with_the_reason() -> None:
    dead = free_port()
    result = run_check(f"redis://127.0.0.1:{dead}/0", f"mongodb://user:s3cret-pw@127.0.0.1:{dead}/")
    assert result.returncode == 1
    [line] = [x for x in result.stdout.splitlines() if x.startswith("FAIL  mongodb reachable")]
    assert f"mongodb://user:***@127.0.0.1:{dead}/" in line, line
    assert "Errno 111" in line or "refused" in line or "no answer within" in line, line
    [line] = [x for x in result.stdout.splitlines() if x.startswith("FAIL  redis reachable")]
    assert f"redis://127.0.0.1:{dead}/0" in line, line
    assert "s3cret" not in result.stdout + result.stderr
