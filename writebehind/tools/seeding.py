"""Seed the partition streams' ids above the highest version MongoDB holds (after a failover).

Versions are stream ids, made from the primary's clock. A replica promoted
after its primary was lost, or a Redis restored from an older backup, may
issue ids below versions the workers already persisted from the lost primary
(its clock was ahead, or its last records never reached the replica); the
version guard would then keep the older document. ``XSETID`` moves a stream's
last id forward (https://redis.io/docs/latest/commands/xsetid/), so every
later ``XADD ... *`` issues ids above it. Run before producers write again.

The highest version is found per collection with a descending sort on
``_wb.v``; MongoDB sorts an array field descending by its largest element,
which for ``[ms, seq]`` is ``ms``. Seeding to ``ms + 1`` covers any ``seq``.
Without an index on ``_wb.v`` each collection is scanned once.

Since the version floor (``core.floor``) a new primary seeds itself before its
first write; this scan is for versions the floor does not cover (documents
persisted before floors were kept, copied in from elsewhere, or a floor
document deleted), so it also raises the floor to the highest version found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from writebehind.core.backoff import Backoff
from writebehind.core.floor import FLOOR_COLLECTION, floor_id, floor_update
from writebehind.core.keys import KeySpace
from writebehind.core.replies import as_text, is_stream_id_below_top
from writebehind.core.version import Version


@dataclass(frozen=True, slots=True)
class SeedReport:
    floor: Version | None
    """Above every version MongoDB holds (None: MongoDB holds no writebehind document)."""
    raised: tuple[int, ...]
    """Partitions whose last id was below the floor and was moved up to it."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "floor": None if self.floor is None else str(self.floor),
            "raised": list(self.raised),
        }


async def highest_persisted_ms(database: Any) -> int | None:
    """The largest ``ms`` of any ``_wb.v`` in the database's collections (None if none)."""
    best: int | None = None
    for name in await database.list_collection_names():
        if name.startswith("system.") or name == FLOOR_COLLECTION:
            continue
        doc = await database[name].find_one(
            {"_wb.v": {"$type": "array"}}, {"_wb.v": 1}, sort=[("_wb.v", -1)]
        )
        if doc is None:
            continue
        ms = int(doc["_wb"]["v"][0])
        best = ms if best is None else max(best, ms)
    return best


async def raise_stream(redis: Redis, stream: str, floor: Version) -> bool:
    """Move ``stream``'s last id up to ``floor`` if it is below; True if it was moved.

    A missing stream is created empty at the floor (``XADD MAXLEN 0`` with the
    floor as id adds and trims in one command), so its first record is issued
    above the floor too.
    """
    races = Backoff(base=0.001, cap=0.05)
    while True:
        if not await redis.exists(stream):
            await redis.xadd(stream, {"seed": "1"}, id=str(floor), maxlen=0, approximate=False)
            return True
        info: Any = await redis.xinfo_stream(stream)
        if Version.parse(as_text(info["last-generated-id"])) >= floor:
            return False
        try:
            await redis.execute_command("XSETID", stream, str(floor))  # type: ignore[no-untyped-call]
            return True
        except ResponseError as exc:
            if not is_stream_id_below_top(exc):
                raise
            # A producer added a record meanwhile: look again, after a jittered pause.
            await anyio.sleep(races.next_delay())


async def seed_streams(redis: Redis, keys: KeySpace, database: Any) -> SeedReport:
    """Raise every partition stream's last id above the highest version in MongoDB,
    and the version floor to it.

    Raises ``redis.exceptions.RedisError`` and ``pymongo.errors.PyMongoError``
    when a server fails; what was raised before stays raised (running it again
    is safe).
    """
    ms = await highest_persisted_ms(database)
    if ms is None:
        return SeedReport(None, ())
    floors = database.get_collection(
        FLOOR_COLLECTION, write_concern=WriteConcern(w="majority", j=True)
    )
    await floors.update_one({"_id": floor_id(keys.prefix)}, floor_update(ms), upsert=True)
    floor = Version(ms + 1, 0)
    raised = [p for p in range(keys.partitions) if await raise_stream(redis, keys.stream(p), floor)]
    return SeedReport(floor, tuple(raised))
