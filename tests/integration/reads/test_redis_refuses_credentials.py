"""A Redis that refuses the client's credentials answers: that is no outage.

Reads must not fall back to MongoDB (which lacks the writes not yet persisted)
as if Redis were down, and the breaker must not open: the caller gets the
driver's ``AuthenticationError`` at once, every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.exceptions import AuthenticationError

from tests.support.servers import RedisServer
from writebehind import ReadPolicy, WriteBehind

pytestmark = pytest.mark.anyio

POLICY = ReadPolicy(redis_timeout=0.3, breaker_failures=2, breaker_cooldown=60)


@pytest.mark.parametrize("password", ["wrong", None], ids=["wrong-password", "no-password"])
async def test_refused_credentials_are_raised_not_read_around(
    redis_factory: Callable[..., RedisServer], mongo_db: Any, password: str | None
) -> None:
    server = redis_factory("--requirepass", "right")
    url = server.url.replace("redis://", f"redis://:{password}@" if password else "redis://")
    await mongo_db.users.insert_one({"_id": "m", "n": 1, "_wb": {"v": [1, 0]}})
    wb = WriteBehind(redis_url=url, mongo=mongo_db, prefix="t", partitions=4, reads=POLICY)
    try:
        users = wb.collection("users")
        for _ in range(4):  # past breaker_failures: still the same answer
            with pytest.raises(AuthenticationError):
                await users.get("m")
        with pytest.raises(AuthenticationError):
            await users.get_many(["m"])
        with pytest.raises(AuthenticationError):
            await users.set("m", {"n": 2})
        assert wb.redis_guard.breaker.state == "closed"
    finally:
        await wb.aclose()
