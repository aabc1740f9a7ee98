"""The four systems of comparison 9, each with YCSB's operations on one collection.

- ``Sdk``: a writebehind collection (write-behind with a near cache, or
  write-through): ``get``, ``set``, ``set`` of a new id, ``modify``.
- ``CacheAside``: reads from Redis (``GET``; a miss reads ``find_one`` and
  ``SET``s the BSON with a TTL); writes to MongoDB, then ``DEL`` the key.
- ``MongoOnly``: ``find_one``, ``replace_one``, ``insert_one``.

Updates write every field (YCSB's ``writeallfields=true``): a whole record, so
every system's update is one replacement. A read-modify-write reads the
record and writes it back changed: the SDK's ``modify`` (one conditional
write, retried on a conflict), a read then a write elsewhere. MongoDB writes
ask for the journal (``j: true``), as the worker's and write-through's do.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import bson
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from writebehind.sdk.collection import Collection

JOURNALED = WriteConcern(w=1, j=True)
CACHE_TTL = 3600  # seconds: the SDK's default ReadPolicy ttl


class System(Protocol):
    """YCSB's operations on records keyed by int."""

    async def read(self, key: int) -> Any: ...
    async def update(self, key: int, record: dict[str, Any]) -> None: ...
    async def insert(self, key: int, record: dict[str, Any]) -> None: ...
    async def rmw(self, key: int, record: dict[str, Any]) -> None: ...
    async def warm(self, keys: list[int]) -> None: ...


class Sdk:
    """A writebehind collection (its mode and read policy chosen by the caller)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    async def read(self, key: int) -> Any:
        return await self.collection.get(key)

    async def update(self, key: int, record: dict[str, Any]) -> None:
        await self.collection.set(key, record)

    async def insert(self, key: int, record: dict[str, Any]) -> None:
        await self.collection.set(key, record)

    async def rmw(self, key: int, record: dict[str, Any]) -> None:
        await self.collection.modify(key, lambda doc: {**(doc or {}), **record})

    async def warm(self, keys: list[int]) -> None:
        await self.collection.warm(keys)


class MongoOnly:
    """MongoDB alone."""

    def __init__(self, db: Any, name: str) -> None:
        self.coll = db.get_collection(name, write_concern=JOURNALED)

    async def read(self, key: int) -> Any:
        return await self.coll.find_one({"_id": key})

    async def update(self, key: int, record: dict[str, Any]) -> None:
        await self.coll.replace_one({"_id": key}, record)

    async def insert(self, key: int, record: dict[str, Any]) -> None:
        await self.coll.insert_one({"_id": key, **record})

    async def rmw(self, key: int, record: dict[str, Any]) -> None:
        doc = await self.read(key) or {}
        doc.pop("_id", None)
        await self.update(key, {**doc, **record})

    async def warm(self, keys: list[int]) -> None:
        """Nothing to warm: MongoDB's own cache is warmed by the load."""


class CacheAside(MongoOnly):
    """Cache-aside over MongoDB: reads cached in Redis, writes to MongoDB then ``DEL``."""

    def __init__(self, redis: Redis, db: Any, name: str) -> None:
        super().__init__(db, name)
        self.redis = redis
        self.prefix = f"ca:{name}:"

    async def read(self, key: int) -> Any:
        raw = await self.redis.get(self.prefix + str(key))
        if raw is not None:
            return bson.decode(cast(bytes, raw))
        doc = await self.coll.find_one({"_id": key})
        if doc is not None:
            await self.redis.set(self.prefix + str(key), bson.encode(doc), ex=CACHE_TTL)
        return doc

    async def warm(self, keys: list[int]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        async for doc in self.coll.find({"_id": {"$in": keys}}):
            pipe.set(self.prefix + str(doc["_id"]), bson.encode(doc), ex=CACHE_TTL)
        await pipe.execute()

    async def update(self, key: int, record: dict[str, Any]) -> None:
        await super().update(key, record)
        await self.redis.delete(self.prefix + str(key))

    async def insert(self, key: int, record: dict[str, Any]) -> None:
        await super().insert(key, record)
        await self.redis.delete(self.prefix + str(key))
