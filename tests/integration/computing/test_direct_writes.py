"""Dependencies changed behind writebehind's back (a direct MongoDB write): the
version stays, the body changes once the cache entry is filled again."""

from __future__ import annotations

from typing import Any

import pytest

from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


async def test_a_dependency_refilled_by_a_read_after_a_direct_write_is_a_change(
    wb: WriteBehind, mongo_db: Any
) -> None:
    """A direct MongoDB write keeps ``_wb.v``. Once the dependency's cache entry is gone
    (its TTL, or the invalidator's eviction) and a document read fills it again, the
    entry holds the new body under the old version. A computed value stored before must
    be stale then (README: recomputed at the latest when a dependency's entry expires);
    before, its stamp (the version alone) matched again and the old value was served."""
    await mongo_db["users"].insert_one({"_id": "42", "name": "Ada", "_wb": {"v": [17, 1]}})
    users = wb.collection("users")

    @wb.cached(ttl=300, key="p:{user_id}", depends_on=lambda user_id: [("users", user_id)])
    async def profile(user_id: str) -> Any:
        doc = await users.get(user_id)
        return None if doc is None else doc["name"].upper()

    assert await profile("42") == "ADA"
    assert await profile.validated("42") == await profile.validated("42")  # served
    await mongo_db["users"].update_one({"_id": "42"}, {"$set": {"name": "Grace"}})
    place = wb.keys.cache(wb.keys.partition_of("users", "42"), "users", "42")
    await wb.redis.delete(place)  # expired, or evicted by `writebehind invalidate`
    assert (await users.get("42") or {})["name"] == "Grace"  # a read fills it again
    assert await profile("42") == "GRACE"
