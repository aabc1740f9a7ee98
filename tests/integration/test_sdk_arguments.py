"""Calls mean what they say: wrong argument types and a closed client raise typed errors.

Each case leaves Redis unchanged and MongoDB untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.redis_state import snapshot
from tests.support.servers import RedisServer
from writebehind import WriteBehind
from writebehind import errors as e
from writebehind.core.version import Version
from writebehind.sdk.collection import Collection

pytestmark = pytest.mark.anyio

Call = Callable[[Collection], Awaitable[Any]]

BAD_CALLS: list[tuple[str, Call, type[Exception]]] = [
    ("set None", lambda c: c.set("u1", None), e.InvalidDocument),  # type: ignore[arg-type]
    ("set a list", lambda c: c.set("u1", [1, 2]), e.InvalidDocument),  # type: ignore[arg-type]
    ("set a float id", lambda c: c.set(1.5, {}), e.UnsupportedIdType),
    ("set_many None doc", lambda c: c.set_many([("u1", None)]), e.InvalidDocument),  # type: ignore[list-item]
    ("set_many a dict", lambda c: c.set_many({"u1": {"a": 1}}), e.InvalidInput),  # type: ignore[arg-type]
    ("set_many a str", lambda c: c.set_many("ab"), e.InvalidInput),  # type: ignore[arg-type]
    ("set_many no pair", lambda c: c.set_many([("u1",)]), e.InvalidInput),  # type: ignore[list-item]
    ("set_many int", lambda c: c.set_many(3), e.InvalidInput),  # type: ignore[arg-type]
    ("patch None", lambda c: c.patch("u1", None), e.InvalidDocument),  # type: ignore[arg-type]
    ("modify no function", lambda c: c.modify("u1", {"a": 1}), e.InvalidInput),  # type: ignore[arg-type]
    ("delete bad id", lambda c: c.delete(None), e.UnsupportedIdType),
    ("get bad id", lambda c: c.get([1]), e.UnsupportedIdType),
    ("wait_persisted str", lambda c: c.wait_persisted("1-0"), e.InvalidInput),  # type: ignore[arg-type]
    ("wait_persisted bare Version", lambda c: c.wait_persisted(Version(1, 0)), e.InvalidInput),
    (
        "wait_persisted other collection",
        lambda c: c.wait_persisted(Version(1, 0).for_document("orders", "u1")),
        e.InvalidInput,
    ),
    (
        "wait_persisted bad timeout",
        lambda c: c.wait_persisted(Version(1, 0).for_document("users", "u1"), timeout="5"),  # type: ignore[arg-type]
        e.InvalidInput,
    ),
]


@pytest.mark.parametrize(("label", "call", "error"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
async def test_bad_arguments_raise_typed_errors_and_change_nothing(
    wb: WriteBehind, redis: Redis, label: str, call: Call, error: type[Exception]
) -> None:
    users = wb.collection("users")
    await users.set("u1", {"a": 0})
    before = await snapshot(redis)
    with pytest.raises(error):
        await call(users)
    assert await snapshot(redis) == before
    assert await users.get("u1") == {"_id": "u1", "a": 0}


async def test_constructor_refuses_non_numbers(redis: Redis, mongo_db: Any) -> None:
    for option in ("backlog_wait", "wait_timeout", "max_conflict_retries", "group"):
        with pytest.raises(e.ConfigurationError, match=option):
            WriteBehind(redis=redis, mongo=mongo_db, **{option: 1 if option == "group" else "1"})


ALL_CALLS: list[tuple[str, Call]] = [
    ("set", lambda c: c.set("u1", {"a": 1})),
    ("delete", lambda c: c.delete("u1")),
    ("patch", lambda c: c.patch("u1", {"a": 1})),
    ("modify", lambda c: c.modify("u1", lambda d: d)),
    ("set_many", lambda c: c.set_many([("u1", {"a": 1})])),
    ("get cached", lambda c: c.get("u1")),
    ("get uncached", lambda c: c.get("never-written")),
    ("wait_persisted", lambda c: c.wait_persisted(Version(1, 0).for_document("users", "u1"))),
]


@pytest.mark.parametrize(("label", "call"), ALL_CALLS, ids=[c[0] for c in ALL_CALLS])
async def test_a_closed_client_raises_client_closed(
    redis_server: RedisServer,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
    label: str,
    call: Call,
) -> None:
    wb = WriteBehind(redis_server.url, mongo_url, database_name)
    async with wb:
        users = wb.collection("users")
        await users.set("u1", {"a": 0})
    probe = Redis.from_url(redis_server.url)
    try:
        clients_before = len(await probe.client_list())
        with pytest.raises(e.ClientClosed):
            await call(users)
        with pytest.raises(e.ClientClosed):
            wb.collection("users")
        with pytest.raises(e.ClientClosed):
            await wb.__aenter__()
        # Nothing reconnected behind the caller's back.
        assert len(await probe.client_list()) == clients_before
    finally:
        await probe.aclose()
        await mongo_client.drop_database(database_name)
