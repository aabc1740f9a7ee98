"""Calls mean what they say: wrong argument types and a closed client raise typed errors.

Each case leaves Redis unchanged and MongoDB untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.redis_state import snapshot
from tests.support.servers import RedisServer
from writebehind import WriteBehind
from writebehind import errors as e
from writebehind.core.version import Version
from writebehind.sdk.collection import Collection
from writebehind.sdk.computing.cached import CachedFunction

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
    ("get_versioned unhashable id", lambda c: c.get_versioned([1]), e.UnsupportedIdType),
    ("get_versioned float id", lambda c: c.get_versioned(1.5), e.UnsupportedIdType),
    ("version unhashable id", lambda c: c.version([1]), e.UnsupportedIdType),
    ("get_many None", lambda c: c.get_many(None), e.InvalidInput),  # type: ignore[arg-type]
    ("get_many a str", lambda c: c.get_many("u1"), e.InvalidInput),
    ("get_many bad id", lambda c: c.get_many([[1]]), e.UnsupportedIdType),
    ("warm an int", lambda c: c.warm(3), e.InvalidInput),  # type: ignore[arg-type]
    ("patch float id", lambda c: c.patch(1.5, {"a": 1}), e.UnsupportedIdType),
    ("modify float id", lambda c: c.modify(1.5, lambda d: d), e.UnsupportedIdType),
    ("delete shard_key unsharded", lambda c: c.delete("u1", shard_key={"a": 1}), e.InvalidInput),
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


WRITE_THROUGH_BAD_CALLS: list[tuple[str, Call, type[Exception]]] = [
    ("set_many None doc", lambda c: c.set_many([("u1", None)]), e.InvalidDocument),  # type: ignore[list-item]
    ("set_many a dict", lambda c: c.set_many({"u1": {"a": 1}}), e.InvalidInput),  # type: ignore[arg-type]
    ("set_many int", lambda c: c.set_many(3), e.InvalidInput),  # type: ignore[arg-type]
    ("set_many no pair", lambda c: c.set_many([("u1",)]), e.InvalidInput),  # type: ignore[list-item]
    ("set None", lambda c: c.set("u1", None), e.InvalidDocument),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("label", "call", "error"), WRITE_THROUGH_BAD_CALLS, ids=[b[0] for b in WRITE_THROUGH_BAD_CALLS]
)
async def test_write_through_refuses_bad_arguments_alike(
    wb: WriteBehind, redis: Redis, label: str, call: Call, error: type[Exception]
) -> None:
    users = wb.collection("users", mode="write_through")
    await users.set("u1", {"a": 0})
    before = await snapshot(redis)
    with pytest.raises(error):
        await call(users)
    assert await snapshot(redis) == before
    assert await users.get("u1") == {"_id": "u1", "a": 0}


def _cached(wb: WriteBehind) -> CachedFunction[[Any], Any]:
    @wb.cached(ttl=60)
    async def profile(user: Any) -> dict[str, Any]:
        return {"user": str(user)}

    return profile


ClientCall = Callable[[WriteBehind], Awaitable[Any]]

CLIENT_BAD_CALLS: list[tuple[str, ClientCall, type[Exception]]] = [
    ("invalidate_tags an int", lambda wb: wb.invalidate_tags(1), e.InvalidInput),  # type: ignore[arg-type]
    ("invalidate_tags a list", lambda wb: wb.invalidate_tags(["t"]), e.InvalidInput),  # type: ignore[arg-type]
    ("bump_namespace None", lambda wb: wb.bump_namespace(None), e.InvalidInput),  # type: ignore[arg-type]
    ("cached unencodable argument", lambda wb: _cached(wb)(object()), e.InvalidInput),
    ("cached missing argument", lambda wb: _cached(wb)(), e.InvalidInput),  # type: ignore[call-arg]
    ("cached invalidate extra argument", lambda wb: _cached(wb).invalidate(1, 2), e.InvalidInput),  # type: ignore[call-arg]
    ("cached refresh unencodable", lambda wb: _cached(wb).refresh(object()), e.InvalidInput),
]


@pytest.mark.parametrize(
    ("label", "call", "error"), CLIENT_BAD_CALLS, ids=[b[0] for b in CLIENT_BAD_CALLS]
)
async def test_bad_arguments_of_client_calls_raise_typed_errors(
    wb: WriteBehind, redis: Redis, label: str, call: ClientCall, error: type[Exception]
) -> None:
    await wb.collection("users").set("u1", {"a": 0})
    before = await snapshot(redis)
    with pytest.raises(error):
        await call(wb)
    assert await snapshot(redis) == before


@pytest.mark.parametrize("tags", [1, None, "tag"])
async def test_cached_refuses_tags_that_are_no_list(wb: WriteBehind, tags: Any) -> None:
    with pytest.raises(e.ConfigurationError, match="tags"):
        wb.cached(ttl=60, tags=tags)


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
    ("get_many", lambda c: c.get_many(["u1", "never-written"])),
    ("warm", lambda c: c.warm(["never-written"])),
    ("version cached", lambda c: c.version("u1")),
    ("version uncached", lambda c: c.version("never-written")),
    ("get_versioned", lambda c: c.get_versioned("never-written")),
    ("wait_persisted", lambda c: c.wait_persisted(Version(1, 0).for_document("users", "u1"))),
]


@dataclass
class Handles:
    """What the calls on a closed client need, made while it was open."""

    wb: WriteBehind
    users: Collection
    through: Collection  # mode="write_through"
    profile: CachedFunction[[Any], Any]


HandleCall = Callable[[Handles], Awaitable[Any]]

CLOSED_CLIENT_CALLS: list[tuple[str, HandleCall]] = [
    ("invalidate_tags", lambda h: h.wb.invalidate_tags("t")),
    ("bump_namespace", lambda h: h.wb.bump_namespace("n")),
    ("cached call", lambda h: h.profile("u1")),
    ("cached validated", lambda h: h.profile.validated("u1")),
    ("cached invalidate", lambda h: h.profile.invalidate("u1")),
    ("cached refresh", lambda h: h.profile.refresh("u1")),
    ("write-through set", lambda h: h.through.set("u1", {"a": 1})),
    ("write-through set_many", lambda h: h.through.set_many([("u1", {"a": 1})])),
    ("write-through set_many bad items", lambda h: h.through.set_many(3)),  # type: ignore[arg-type]
    ("write-through get", lambda h: h.through.get("never-written")),
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
    await _closed_client_raises(
        redis_server, mongo_url, database_name, mongo_client, lambda h: call(h.users)
    )


@pytest.mark.parametrize(
    ("label", "call"), CLOSED_CLIENT_CALLS, ids=[c[0] for c in CLOSED_CLIENT_CALLS]
)
async def test_a_closed_client_raises_client_closed_from_every_call(
    redis_server: RedisServer,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
    label: str,
    call: HandleCall,
) -> None:
    await _closed_client_raises(redis_server, mongo_url, database_name, mongo_client, call)


async def _closed_client_raises(
    redis_server: RedisServer,
    mongo_url: str,
    database_name: str,
    mongo_client: Any,
    call: HandleCall,
) -> None:
    """``call`` on a client used, then closed, raises ``ClientClosed`` and opens nothing."""
    wb = WriteBehind(redis_server.url, mongo_url, database_name)
    async with wb:
        handles = Handles(
            wb, wb.collection("users"), wb.collection("through", mode="write_through"), _cached(wb)
        )
        await handles.users.set("u1", {"a": 0})
        await handles.profile("u1")
    probe = Redis.from_url(redis_server.url)
    try:
        clients_before = len(await probe.client_list())
        with pytest.raises(e.ClientClosed):
            await call(handles)
        with pytest.raises(e.ClientClosed):
            wb.collection("users")
        with pytest.raises(e.ClientClosed):
            wb.cached(ttl=60)
        with pytest.raises(e.ClientClosed):
            await wb.__aenter__()
        # Nothing reconnected behind the caller's back.
        assert len(await probe.client_list()) == clients_before
    finally:
        await probe.aclose()
        await mongo_client.drop_database(database_name)


async def test_constructor_refuses_clients_and_urls_of_the_wrong_type(
    redis_server: RedisServer, mongo_url: str, mongo_db: Any
) -> None:
    wrong: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((3, mongo_url, "db"), {}),
        (("redis-server:6379", mongo_url, "db"), {}),  # no scheme
        ((redis_server.url, 3, "db"), {}),
        ((redis_server.url, mongo_url, 3), {}),
        ((), {"redis": redis_server.url, "mongo": mongo_db}),  # a URL where a client goes
    ]
    for args, kwargs in wrong:
        with pytest.raises(e.ConfigurationError):
            WriteBehind(*args, **kwargs)
