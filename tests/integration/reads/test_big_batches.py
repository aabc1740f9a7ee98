"""A big batch takes a healthy Redis longer than ``redis_timeout``: it is not an outage."""

from __future__ import annotations

import pytest

from writebehind import WriteBehind

pytestmark = pytest.mark.anyio

N = 20_000


async def test_a_big_set_many_and_get_many_succeed_on_a_healthy_redis(wb: WriteBehind) -> None:
    # Before the deadline grew with the batch, the set_many raised CacheUnavailable
    # after redis_timeout (0.5 s), and the get_many fell back to MongoDB, where the
    # acknowledged writes were not yet: they read as missing.
    users = wb.collection("users")
    versions = await users.set_many([(f"u{i}", {"n": i}) for i in range(N)])
    assert len(versions) == N
    docs = await users.get_many([f"u{i}" for i in range(N)])
    missing = [doc_id for doc_id, doc in docs.items() if doc is None]
    assert missing == []
    assert docs["u7"] == {"_id": "u7", "n": 7}
    assert not wb.redis_guard.breaker_open
