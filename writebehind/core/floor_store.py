"""Reading and raising the version floor document in MongoDB (the IO of ``core.floor``)."""

from __future__ import annotations

from typing import Any

from pymongo.write_concern import WriteConcern

from writebehind.core.floor import FLOOR_COLLECTION, FloorTracker, floor_id, floor_ms, floor_update


class FloorKeeper:
    """Raises the floor before a batch of versioned writes (one per writer process).

    ``write_concern`` must be the data's own (the worker's ``w``/``j``, or
    write-through's journaled one): the floor must be as durable as the
    versions it covers, or a MongoDB failover could keep the data and lose it.
    """

    def __init__(self, database: Any, prefix: str, write_concern: WriteConcern) -> None:
        self.database = database
        self.prefix = prefix
        self.write_concern = write_concern
        self.tracker = FloorTracker()
        self.raises = 0
        """How many updates this keeper sent (tests and metrics)."""

    async def cover(self, batch_max_ms: int) -> None:
        """Make the stored floor cover ``batch_max_ms`` before the batch is written.

        Usually returns at once (the floor this process wrote covers it);
        otherwise one ``update_one`` (``$max``, upsert). Raises PyMongo's errors:
        the caller must then not write the batch.
        """
        target = self.tracker.target(batch_max_ms)
        if target is None:
            return
        coll = self.database.get_collection(FLOOR_COLLECTION, write_concern=self.write_concern)
        self.raises += 1
        await coll.update_one({"_id": floor_id(self.prefix)}, floor_update(target), upsert=True)
        self.tracker.wrote(target)


async def read_floor(database: Any, prefix: str) -> int | None:
    """The deployment's floor in ms (``None``: no floor document: nothing persisted since
    floors were kept). Raises PyMongo's errors, ``InvalidVersion`` for a malformed document."""
    doc = await database.get_collection(FLOOR_COLLECTION).find_one({"_id": floor_id(prefix)})
    return floor_ms(doc)
