"""Concurrent read-modify-writes of one document never lose an update."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.servers import RedisServer
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


async def test_fifty_tasks_patching_one_document_all_survive(wb: WriteBehind) -> None:
    users = wb.collection("users")
    await users.set("hot", {"base": True})
    versions = []

    async def patch(i: int) -> None:
        versions.append(await users.patch("hot", {f"f{i}": i}))

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(patch, i)
    doc = await users.get("hot")
    assert doc == {"_id": "hot", "base": True, **{f"f{i}": i for i in range(50)}}
    assert len(set(versions)) == 50


async def test_concurrent_modify_counter_is_exact(wb: WriteBehind) -> None:
    users = wb.collection("counters")

    def bump(doc: dict[str, Any] | None) -> dict[str, Any]:
        return {"n": (doc or {"n": 0})["n"] + 1}

    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(users.modify, "c", bump)
    assert await users.get("c") == {"_id": "c", "n": 40}


async def test_patches_from_several_processes_all_survive(
    wb: WriteBehind, redis_server: RedisServer, mongo_url: str, database_name: str
) -> None:
    def patcher(name: str) -> list[str]:
        return [sys.executable, "-m", "tests.support.patcher", redis_server.url, mongo_url,
                database_name, "t", "shared", name, "15"]  # fmt: skip

    procs = [subprocess.Popen(patcher(f"p{n}"), cwd=ROOT) for n in range(3)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    doc = await wb.collection("users").get("shared")
    expected = {f"p{n}_{i}": i for n in range(3) for i in range(15)}
    assert doc == {"_id": "shared", **expected}
