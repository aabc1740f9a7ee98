"""``writebehind invalidate`` started before Redis answers waits for it, like the worker.

Under Kubernetes or compose the daemons start in any order; dying at once on a
Redis that is not up yet would make the invalidator crash-loop.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.invalidator import InvalidatorProcess
from tests.support.servers import RedisServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def process(tmp_path: Path) -> Iterator[list[InvalidatorProcess]]:
    started: list[InvalidatorProcess] = []
    yield started
    for proc in started:
        proc.close()


async def test_it_waits_for_redis_then_watches(
    redis_factory: Callable[..., RedisServer],
    mongo_url: str,
    database_name: str,
    tmp_path: Path,
    process: list[InvalidatorProcess],
) -> None:
    server = redis_factory()
    server.stop()
    proc = InvalidatorProcess(server.url, mongo_url, database_name, tmp_path / "inv.log")
    process.append(proc.start())

    async def says(text: str) -> bool:
        return text in proc.output()

    await wait_until(
        lambda: says("waiting_for_redis"), timeout=30, message=f"a waiting line: {proc.output()}"
    )
    assert proc.proc is not None and proc.proc.poll() is None, proc.output()
    server.start()
    await wait_until(
        lambda: says("invalidator_watching"), timeout=30, message=f"watching: {proc.output()}"
    )
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(15) == 0, proc.output()
    assert "Traceback" not in proc.output()


async def test_its_logs_are_json_lines_when_not_on_a_terminal(
    redis_factory: Callable[..., RedisServer],
    mongo_url: str,
    database_name: str,
    tmp_path: Path,
    process: list[InvalidatorProcess],
) -> None:
    # A daemon, as the worker: --log-format auto is JSON for a log collector (the tools,
    # run by people, log lines for people).
    server = redis_factory()
    server.stop()
    proc = InvalidatorProcess(
        server.url, mongo_url, database_name, tmp_path / "inv.log", log_format=None
    )
    process.append(proc.start())

    async def waiting() -> bool:
        return "waiting_for_redis" in proc.output()

    await wait_until(waiting, timeout=30, message=f"a waiting line: {proc.output()}")
    lines = proc.output().splitlines()
    assert lines and all(json.loads(line)["event"] for line in lines), lines
