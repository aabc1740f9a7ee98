"""Seeding partitions up front, and a failover around a writer that holds versions (the
fence, core/witness.py), for tests."""

from __future__ import annotations

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.proxy import Proxy
from writebehind import WriteBehind
from writebehind.core.floor_store import FloorKeeper
from writebehind.embedded.servers import RedisServer


async def seed_all(wb: WriteBehind) -> None:
    """Seed every partition on the current primary, as a first write per partition would
    (sdk/seeding.py), so that no later write is refused with ``WBUNSEEDED`` first."""
    await wb.seeder.seed(range(wb.keys.partitions), wb.reads.mongo_timeout)


class FloorHold:
    """Holds the first ``FloorKeeper.cover`` of the process (a writer between reading its
    versions and raising the floor) until ``release``; ``reached`` is set once it waits."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = anyio.Event()
        self.released = anyio.Event()
        self._armed = True
        cover = FloorKeeper.cover

        async def held(keeper: FloorKeeper, batch_max_ms: int) -> None:
            if self._armed:
                self._armed = False
                self.reached.set()
                await self.released.wait()
            await cover(keeper, batch_max_ms)

        monkeypatch.setattr(FloorKeeper, "cover", held)

    def release(self) -> None:
        self.released.set()


async def promote(replica: RedisServer) -> None:
    """``REPLICAOF NO ONE`` on ``replica`` (a no-op on a primary)."""
    client = Redis.from_url(replica.url)
    try:
        await client.execute_command("REPLICAOF", "NO", "ONE")  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()


async def fail_over(proxy: Proxy, lost: RedisServer, replica: RedisServer) -> None:
    """The primary behind ``proxy`` is lost (killed) and ``replica`` (promoted already, or
    here) takes its address, as a failover's address switch would."""
    lost.kill()
    await promote(replica)
    proxy.target_port = replica.port
    proxy.close_connections()
