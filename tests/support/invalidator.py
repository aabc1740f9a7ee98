"""The invalidator in tests: in-process (a task), or as ``writebehind invalidate`` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import bson
from prometheus_client import REGISTRY, CollectorRegistry
from redis.asyncio import Redis

from tests.support.processes import REPO_ROOT
from writebehind.core.keys import KeySpace
from writebehind.tools.invalidation.daemon import Invalidator, InvalidatorMetrics


@asynccontextmanager
async def running_invalidator(
    redis: Redis,
    database: Any,
    *collections: str,
    keys: KeySpace | None = None,
    **options: Any,
) -> AsyncIterator[Invalidator]:
    """An invalidator watching ``database`` for the block (``keys``: prefix ``t``,
    4 partitions unless given)."""
    space = keys or KeySpace("t", 4)
    invalidator = Invalidator(
        redis, database, space, collections, registry=CollectorRegistry(), **options
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(invalidator.run)
        with anyio.fail_after(30):
            await invalidator.started.wait()
        yield invalidator
        tg.cancel_scope.cancel()


UNUSABLE_TOKEN = {"_data": "8200000001000000012B0229296E04"}
"""A resume token from an oplog position the server no longer has (here: one it cannot parse)."""


async def lose_token(redis: Redis, database: str, prefix: str = "t") -> None:
    """Store ``UNUSABLE_TOKEN`` as the invalidator's resume token: its next start empties
    the watched collections' clean entries (``mode="empty"``)."""
    await redis.set(f"{{{prefix}}}:invalidator:{database}:token", bson.encode(UNUSABLE_TOKEN))


def changes(invalidator: Invalidator, collection: str, outcome: str) -> float:
    value = invalidator.metrics.changes.labels(collection, outcome)._value.get()
    return float(value)


class InvalidatorProcess:
    """One ``writebehind invalidate`` subprocess; ``close()`` always kills it."""

    def __init__(
        self,
        redis_url: str,
        mongo_url: str,
        database: str,
        log_path: Path,
        log_format: str | None = "json",
    ) -> None:
        """``log_format=None``: no ``--log-format`` (``auto``; the log is a file, no terminal)."""
        self.args = [
            sys.executable, "-m", "writebehind.cli", "invalidate",
            "--redis-url", redis_url, "--mongo-url", mongo_url, "--database", database,
            "--prefix", "t", "--partitions", "4", "--collection", "users",
            *(("--log-format", log_format) if log_format else ()),
        ]  # fmt: skip
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> InvalidatorProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    close = kill


def sdk_and_invalidator_metrics() -> set[str]:
    """Metric names (no ``_total``) of the SDK (default registry) and of the invalidator."""
    registry = CollectorRegistry()
    InvalidatorMetrics(registry)
    sdk = {m.name for m in REGISTRY.collect() if m.name.startswith("writebehind_sdk")}
    return sdk | {m.name for m in registry.collect()}
