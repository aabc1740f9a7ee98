"""A single ``get`` reads its entry with one READ script call: same answers, NOSCRIPT safe."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.streams import cache_key
from writebehind import WriteBehind
from writebehind.core.scripts_read import READ
from writebehind.sdk.reading.entry import ENTRY_FIELDS

pytestmark = pytest.mark.anyio


def test_the_script_reads_the_fields_the_parser_expects() -> None:
    assert ", ".join(f"'{f}'" for f in ENTRY_FIELDS) in READ


async def test_one_read_answers_as_the_pipelined_read_does(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    users = wb.collection("users")
    await users.set("u1", {"name": "a"})
    await users.set("u2", {"name": "b"})
    await users.delete("u2")
    reader: Any = users._reader
    places = [reader._place(i) for i in ("u1", "u2", "u3")]
    await redis.pexpire(places[0].entry, 60_000)  # clean, as after the worker's ack
    for place, ttl in zip(places, ("clean", "dirty", "none"), strict=True):
        [alone] = await reader._read_entries([place])
        [piped, _] = await reader._read_entries([place, place])
        assert replace(alone, ttl_ms=0) == replace(piped, ttl_ms=0)
        assert abs(alone.ttl_ms - piped.ttl_ms) < 1000  # PTTL counts down between the reads
        assert {"clean": alone.ttl_ms > 0, "dirty": alone.ttl_ms == -1, "none": alone.ttl_ms == -2}[
            ttl
        ]
    assert await users.get("u1") == {"_id": "u1", "name": "a"}
    assert await users.get("u2") is None


async def test_a_single_read_survives_an_emptied_script_cache(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    users = wb.collection("users")
    await users.set("u1", {"name": "a"})
    await redis.script_flush()
    assert await users.get("u1") == {"_id": "u1", "name": "a"}
    assert await redis.hget(cache_key(wb.keys, "users", "u1"), "v") is not None
    assert await redis.script_exists(wb.scripts.read.sha) == [True]  # EVAL loaded it
