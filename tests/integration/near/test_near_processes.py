"""The near cache across two OS processes: write-to-visible time, and a killed feed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.near_peer import NearPeer
from tests.support.servers import RedisServer
from writebehind import WriteBehind
from writebehind.sdk.near.follower import FEED_CLIENT_NAME

MAX_STALE = 0.5
KILL_MAX_STALE = 2.0
WRITES = 100
pytestmark = pytest.mark.anyio


@pytest.fixture
def peers() -> Iterator[list[NearPeer]]:
    started: list[NearPeer] = []
    yield started
    for peer in started:
        peer.close()


async def _start_peer(
    peers: list[NearPeer],
    redis_server: RedisServer,
    mongo_url: str,
    database: str,
    max_stale: float = MAX_STALE,
) -> NearPeer:
    peer = NearPeer(redis_server.url, mongo_url, database, "hot", max_stale)
    peers.append(peer)
    await peer.ready()
    return peer


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_a_write_is_seen_by_the_other_process_within_a_measured_bound(
    wb: WriteBehind,
    redis_server: RedisServer,
    mongo_url: str,
    database_name: str,
    peers: list[NearPeer],
) -> None:
    users = wb.collection("users")
    await users.set("hot", {"n": 0})
    peer = await _start_peer(peers, redis_server, mongo_url, database_name)
    acked: dict[str, float] = {}
    for n in range(1, WRITES + 1):
        await users.set("hot", {"n": n})
        acked[str(n)] = time.monotonic()
        await anyio.sleep(0.02)
    await anyio.sleep(MAX_STALE)
    report = await peer.finish()
    seen: dict[str, list[float]] = report["seen"]
    delays = [max(0.0, seen[n][0] - acked[n]) for n in acked if n in seen]
    # A value overwritten before the peer's next read may be skipped; nearly all are seen.
    assert len(delays) >= WRITES * 0.9, f"the peer saw only {len(delays)} of {WRITES} values"
    assert str(WRITES) in seen, "the newest write never became visible"
    assert report["near_hits"] > WRITES, "the peer was not reading its near cache"
    p50, p99 = _percentile(delays, 0.5), _percentile(delays, 0.99)
    measured = {
        "writes": WRITES,
        "seen": len(delays),
        "p50_ms": round(p50 * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "max_ms": round(max(delays) * 1000, 2),
    }
    print("near-cache write-to-visible:", json.dumps(measured))  # recorded in docs/benchmarks.md
    # The promise is max_stale; the loopback target (p99 < 50 ms) is recorded, not asserted.
    assert max(delays) <= MAX_STALE + 0.25, f"write-to-visible {max(delays):.3f}s"


async def _feed_connection(redis: Redis) -> int | None:
    for client in await redis.client_list():
        if client.get("name") == FEED_CLIENT_NAME:
            return int(client["id"])
    return None


async def test_the_feed_killed_during_two_writes_serves_no_older_value_after_max_stale(
    wb: WriteBehind,
    redis: Redis,
    redis_server: RedisServer,
    mongo_url: str,
    database_name: str,
    peers: list[NearPeer],
) -> None:
    # A max_stale longer than the reconnection: the near cache is served throughout, so
    # only resuming from the last id applied (not from the streams' head) evicts n=0.
    max_stale = KILL_MAX_STALE
    users = wb.collection("users")
    await users.set("hot", {"n": 0})
    peer = await _start_peer(peers, redis_server, mongo_url, database_name, max_stale)
    feed = await _feed_connection(redis)
    assert feed is not None, "the peer's feed connection is not in CLIENT LIST"
    await redis.execute_command("CLIENT", "KILL", "ID", feed)
    await users.set("hot", {"n": 1})
    await users.set("hot", {"n": 2})
    acked = time.monotonic()
    await anyio.sleep(max_stale + 0.5)
    report: dict[str, Any] = await peer.finish()
    seen = report["seen"]
    assert "2" in seen, f"the newest value was never returned: {seen}"
    for old in ("0", "1"):
        if old in seen:
            began = seen[old][1]  # the last read that returned it began then
            assert began <= acked + max_stale, (
                f"a read begun {began - acked:.3f}s after the newer write returned n={old}"
            )
    assert seen["2"][1] >= acked + max_stale, "the peer stopped reading too early"
    assert report["resumes"] >= 1, "the feed never resumed after CLIENT KILL"
