"""``scripts/replay.py``, the replay for hosts without the CLI on PATH, against real servers."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.paths import REPO_ROOT
from tests.support.servers import RedisServer
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


async def test_the_script_replays_records_into_mongodb(
    wb: WriteBehind, redis_server: RedisServer, mongo_url: str, database_name: str, mongo_db: Any
) -> None:
    # No worker runs: only the replay can bring these records to MongoDB.
    users = wb.collection("users")
    for i in range(5):
        await users.set(i, {"n": i})
    await users.delete(4)
    script = (sys.executable, str(REPO_ROOT / "scripts" / "replay.py"))
    done = await Cli(redis_server.url, mongo_url, database_name, program=script)(
        "--since", "0", "--json"
    )
    assert done.code == 0, done.stderr
    totals = done.json()["totals"]
    assert totals["records"] == 6
    assert totals["applied"] == 5  # 4 inserted, 1 deleted; the delete covers one set
    stored = {d["_id"]: d async for d in mongo_db["users"].find({"_wb.deleted": {"$ne": True}})}
    assert sorted(stored) == [0, 1, 2, 3]
    assert all(stored[i]["n"] == i for i in range(4))
