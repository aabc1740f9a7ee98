"""`replay` and `dlq replay --all` with MongoDB down: they say they are waiting, and give
up after --timeout with exit status 5, one line, safe to run again."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
import bson
import pytest
from redis.asyncio import Redis

from tests.support.cli import one_error_line, run_cli, spawn_cli
from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.servers import RedisServer, free_port
from tests.support.waiting import wait_until
from writebehind.core.keys import KeySpace

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)


def args(redis_server: RedisServer) -> list[str]:
    dead = f"mongodb://app:s3cret@127.0.0.1:{free_port()}/"
    return [
        "--redis-url", redis_server.url, "--mongo-url", dead, "--database", "timeouts",
        "--prefix", TEST_PREFIX, "--partitions", str(TEST_PARTITIONS), "--timeout", "5s",
    ]  # fmt: skip


async def test_replay_shows_it_waits_and_gives_up_after_its_timeout(
    redis: Redis, redis_server: RedisServer
) -> None:
    for n in range(3):
        await redis.xadd(
            KEYS.stream(0),
            {"op": "set", "c": "docs", "d": bson.encode({"_id": f"d{n}", "n": n})},
        )
    started = time.monotonic()
    result = run_cli("replay", "--since", "0", *args(redis_server), timeout=120)
    elapsed = time.monotonic() - started
    line = one_error_line(result)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "kept failing for --timeout 5s" in line and "safe" in line, line
    notices = [x for x in result.stderr.splitlines() if "unreachable, retrying" in x]
    assert notices, result.stderr
    assert "records waiting" in notices[0]
    assert "s3cret" not in result.stdout + result.stderr
    # It gave up because of --timeout, not PyMongo's 30 s server selection.
    assert elapsed < 30, elapsed


async def test_dlq_replay_all_shows_it_waits_and_gives_up_after_its_timeout(
    redis: Redis, redis_server: RedisServer
) -> None:
    await redis.xadd(
        KEYS.dead_letters(1),
        {"op": "set", "c": "docs", "d": bson.encode({"_id": "x", "n": 1}), "ov": "1-0"},
    )
    result = run_cli("dlq", "replay", "--all", *args(redis_server), timeout=120)
    line = one_error_line(result)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "kept failing for --timeout 5s" in line, line
    assert any("unreachable, retrying, 1 records waiting" in x for x in result.stderr.splitlines())
    # The letter stays, to be re-driven by the next run.
    assert await redis.xlen(KEYS.dead_letters(1)) == 1


async def test_logs_of_tools_are_for_people_even_when_piped(
    redis: Redis, redis_server: RedisServer
) -> None:
    result = run_cli("replay", "--since", "0", *args(redis_server))  # nothing to replay
    assert result.returncode == 0, result.stderr
    assert "replay_started" in result.stderr
    assert not [x for x in result.stderr.splitlines() if x.startswith("{")], result.stderr
    assert "\x1b[" not in result.stderr  # no colours outside a terminal


async def test_ctrl_c_while_waiting_exits_130_with_one_line(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    # Click turns Ctrl-C into Abort: this printed "Aborted!" and exited 1, not the
    # documented 130.
    await redis.xadd(
        KEYS.stream(0), {"op": "set", "c": "docs", "d": bson.encode({"_id": "c", "n": 1})}
    )
    output = tmp_path / "replay.out"
    proc = spawn_cli(
        "replay", "--since", "0", *args(redis_server), "--timeout", "2m", output=output
    )
    try:

        async def waiting() -> bool:
            return "unreachable, retrying" in output.read_text()

        await wait_until(waiting, timeout=30, message="a retry notice")
        proc.send_signal(signal.SIGINT)
        code = await anyio.to_thread.run_sync(lambda: proc.wait(30))
    finally:
        proc.kill()
        proc.wait()
    text = output.read_text()
    assert code == 130, text
    assert "Traceback" not in text
    assert [x for x in text.splitlines() if x.startswith("Error: ")] == ["Error: interrupted"]
