"""Seeding a partition on a new Redis primary before its first write (``core.floor``).

The write script refuses (``WBUNSEEDED``) while a partition's seeded key does
not hold the primary's replication id: after a promotion, a restart, or on a
fresh deployment. The refused call changed nothing; the SDK then reads the
version floor from MongoDB, runs the seed script (the stream's last id moves
above the floor, and the key is set), and sends the same call again. Three
extra round trips, once per partition per primary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import anyio
from pymongo.errors import ConnectionFailure

from writebehind.core.errors import DatabaseUnavailable
from writebehind.core.floor import seed_id
from writebehind.core.floor_store import read_floor
from writebehind.core.script_calls import call_script
from writebehind.sdk.reading.loading import within

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind

log = logging.getLogger("writebehind.sdk")

SEED_ROUNDS = 3
"""How many times one write seeds and re-sends before giving up (the primary changed again
in between, or the seeded key was deleted meanwhile)."""

_WHY = (
    "Redis changed primary or restarted (or this deployment is new), and its partition "
    "streams must be seeded above the versions MongoDB holds before writes go on"
)


class PartitionSeeder:
    """Seeds partitions for one client; concurrent writers of a partition share one seeding."""

    def __init__(self, wb: WriteBehind) -> None:
        self._wb = wb
        self._flights: dict[int, anyio.Event] = {}

    async def seed(self, partitions: Iterable[int], mongo_timeout: float) -> None:
        """Seed ``partitions`` on the current primary (a no-op for those seeded already).

        ``mongo_timeout`` bounds the read of the floor, in seconds.

        Raises:
            DatabaseUnavailable: MongoDB did not answer the read of the floor in time
                (or could not be reached); nothing was written.
            CacheUnavailable: Redis did not answer the seed script in time.
            pymongo.errors.PyMongoError: MongoDB refused the read.
            InvalidVersion: the floor document was edited into something unreadable.
        """
        for partition in sorted(set(partitions)):
            flight = self._flights.get(partition)
            if flight is not None:
                await flight.wait()  # the caller re-sends; still refused, it seeds itself
                continue
            event = self._flights[partition] = anyio.Event()
            try:
                await self._seed_one(partition, mongo_timeout)
            finally:
                del self._flights[partition]
                event.set()

    async def _seed_one(self, partition: int, mongo_timeout: float) -> None:
        wb = self._wb
        try:
            floor = await within(
                read_floor(wb.mongo, wb.keys.prefix), mongo_timeout, "the read of the version floor"
            )
        except DatabaseUnavailable as exc:
            raise DatabaseUnavailable(f"{exc}: {_WHY}; nothing was written") from exc
        except ConnectionFailure as exc:
            raise DatabaseUnavailable(
                f"MongoDB could not be reached to read the version floor ({exc}): {_WHY}; "
                "nothing was written"
            ) from exc
        target = "" if floor is None else seed_id(floor)
        keys = [wb.keys.stream(partition), wb.keys.seeded(partition)]
        outcome = await wb.redis_guard.call(
            lambda: call_script(wb.redis, wb.scripts.seed, keys, [target]),
            wb.write_timeout,
            "the seeding of a partition",
        )
        if outcome == b"raised":
            log.info(
                "partition %d seeded on a new Redis primary: its stream now issues "
                "versions from %s, above the version floor",
                partition,
                target,
            )
