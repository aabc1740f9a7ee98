"""Seeding partitions up front, for tests that must see a write's own round trips only."""

from __future__ import annotations

from writebehind import WriteBehind


async def seed_all(wb: WriteBehind) -> None:
    """Seed every partition on the current primary, as a first write per partition would
    (sdk/seeding.py), so that no later write is refused with ``WBUNSEEDED`` first."""
    await wb.seeder.seed(range(wb.keys.partitions), wb.reads.mongo_timeout)
