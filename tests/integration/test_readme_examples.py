"""Every ```python block of README.md runs as written, against real servers.

Each block is a whole program, run in its own interpreter with an in-process
worker draining the streams (the README's ``wait_persisted`` needs one). The
README's example addresses (``redis://127.0.0.1:6379/0``,
``mongodb://127.0.0.1:27017``) are replaced by the test servers'. A block may
be left out only with a reason given right before it, in an HTML comment:
``<!-- not run: needs X -->``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.config import fast_settings
from tests.support.servers import RedisServer
from writebehind.worker.runner import Worker

README = Path(__file__).resolve().parents[2] / "README.md"
REDIS_EXAMPLE = "redis://127.0.0.1:6379/0"
MONGO_EXAMPLE = "mongodb://127.0.0.1:27017"
_BLOCK = re.compile(
    r"(?:<!--\s*not run:(?P<reason>[^>]*)-->\s*\n)?```python\n(?P<code>.*?)```", re.S
)


def readme_blocks() -> list[Any]:
    params = []
    text = README.read_text()
    for n, match in enumerate(_BLOCK.finditer(text), 1):
        line = text.count("\n", 0, match.start("code"))
        reason = match.group("reason")
        marks = [pytest.mark.skip(reason=f"README says: {reason.strip()}")] if reason else []
        params.append(pytest.param(match.group("code"), id=f"block{n}-line{line}", marks=marks))
    return params


def test_the_readme_has_python_examples() -> None:
    assert readme_blocks(), "README.md has no ```python blocks"


@pytest.fixture
async def readme_worker(
    redis_server: RedisServer, mongo_url: str, redis: Redis
) -> AsyncIterator[None]:
    """A worker on the README's defaults (prefix ``wb``, 16 partitions, database ``app``)."""
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, uuidRepresentation="standard")
    await mongo.drop_database("app")
    client = Redis.from_url(redis_server.url)
    worker = Worker(client, mongo["app"], fast_settings(prefix="wb", partitions=16))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            with anyio.fail_after(30):
                await worker.started.wait()
            yield
            worker.request_stop()
    finally:
        await client.aclose()
        await mongo.drop_database("app")
        await mongo.close()


@pytest.mark.anyio
@pytest.mark.parametrize("code", readme_blocks())
async def test_readme_block_runs(
    code: str,
    redis_server: RedisServer,
    mongo_url: str,
    readme_worker: None,
) -> None:
    program = code.replace(REDIS_EXAMPLE, redis_server.url).replace(MONGO_EXAMPLE, mongo_url)
    result = await anyio.run_process(
        [sys.executable, "-c", program], check=False, stderr=subprocess.STDOUT
    )
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, f"README block failed:\n{code}\n--- output ---\n{output}"
