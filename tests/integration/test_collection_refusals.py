"""Bad input raises a typed error and leaves Redis byte-for-byte unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.redis_state import snapshot
from writebehind import WriteBehind
from writebehind import errors as e

pytestmark = pytest.mark.anyio

BAD_DOCUMENTS: list[tuple[str, Any, type[Exception]]] = [
    ("not encodable", {"x": object()}, e.NotEncodable),
    ("a set", {"x": {1, 2}}, e.NotEncodable),
    ("over 16 MiB", {"blob": b"\x00" * (16 * 1024 * 1024)}, e.DocumentTooLarge),
    ("dollar field", {"$set": 1}, e.InvalidFieldName),
    ("nested dollar", {"a": [{"ok": 1}, {"$bad": 2}]}, e.InvalidFieldName),
    ("dotted field", {"a.b": 1}, e.InvalidFieldName),
    ("deep dotted", {"a": {"b": {"c.d": 1}}}, e.InvalidFieldName),
    ("int over int64", {"n": 2**63}, e.IntegerOutOfRange),
    ("int under int64", {"deep": [[-(2**63) - 1]]}, e.IntegerOutOfRange),
    ("reserved metadata", {"_wb": {}}, e.InvalidFieldName),
    ("disagreeing _id", {"_id": "other"}, e.IdMismatch),
    ("int vs str _id", {"_id": 7}, e.IdMismatch),
    ("not a mapping", ["a", "list"], e.InvalidDocument),
]


@pytest.fixture
async def seeded(wb: WriteBehind) -> WriteBehind:
    users = wb.collection("users")
    await users.set("7", {"name": "seed"})
    await users.set("other-doc", {"n": 1})
    return wb


@pytest.mark.parametrize(
    ("label", "doc", "error"), BAD_DOCUMENTS, ids=[b[0] for b in BAD_DOCUMENTS]
)
async def test_bad_set_changes_nothing(
    seeded: WriteBehind, redis: Redis, label: str, doc: Any, error: type[Exception]
) -> None:
    users = seeded.collection("users")
    before = await snapshot(redis)
    with pytest.raises(error):
        await users.set("7", doc)
    assert await snapshot(redis) == before
    assert isinstance(error("x"), e.InvalidInput)


@pytest.mark.parametrize(
    ("label", "doc", "error"), BAD_DOCUMENTS, ids=[b[0] for b in BAD_DOCUMENTS]
)
async def test_bad_set_many_writes_none_of_the_batch(
    seeded: WriteBehind, redis: Redis, label: str, doc: Any, error: type[Exception]
) -> None:
    users = seeded.collection("users")
    before = await snapshot(redis)
    with pytest.raises(error):
        await users.set_many([("a", {"ok": 1}), ("7", doc), ("b", {"ok": 2})])
    assert await snapshot(redis) == before


@pytest.mark.parametrize(
    ("label", "fields", "error"),
    [b for b in BAD_DOCUMENTS if b[0] not in ("not a mapping",)],
    ids=[b[0] for b in BAD_DOCUMENTS if b[0] != "not a mapping"],
)
async def test_bad_patch_changes_nothing(
    seeded: WriteBehind, redis: Redis, label: str, fields: Any, error: type[Exception]
) -> None:
    users = seeded.collection("users")
    before = await snapshot(redis)
    with pytest.raises(error):
        await users.patch("7", fields)
    assert await snapshot(redis) == before


async def test_bad_modify_result_changes_nothing(seeded: WriteBehind, redis: Redis) -> None:
    users = seeded.collection("users")
    before = await snapshot(redis)
    with pytest.raises(e.InvalidFieldName):
        await users.modify("7", lambda doc: {**(doc or {}), "$x": 1})
    with pytest.raises(e.InvalidDocument):
        await users.modify("7", lambda doc: "not a document")  # type: ignore[arg-type,return-value]
    with pytest.raises(e.IdMismatch):
        await users.modify("7", lambda doc: {"_id": "8"})
    assert await snapshot(redis) == before


@pytest.mark.parametrize("bad_id", [1.5, None, True, b"bytes", 2**63, ("t",)], ids=repr)
async def test_unsupported_ids_change_nothing(
    seeded: WriteBehind, redis: Redis, bad_id: Any
) -> None:
    users = seeded.collection("users")
    before = await snapshot(redis)
    for call in (
        lambda: users.set(bad_id, {"a": 1}),
        lambda: users.patch(bad_id, {"a": 1}),
        lambda: users.delete(bad_id),
        lambda: users.modify(bad_id, lambda d: d),
        lambda: users.get(bad_id),
        lambda: users.set_many([("fine", {}), (bad_id, {})]),
    ):
        with pytest.raises(e.UnsupportedIdType):
            await call()
    assert await snapshot(redis) == before


@pytest.mark.parametrize("name", ["", "a$b", "system.users", "nul\x00"])
async def test_bad_collection_names_are_refused(wb: WriteBehind, name: str) -> None:
    with pytest.raises(e.InvalidCollectionName):
        wb.collection(name)
