"""A worker whose Redis connections go silent without closing (a NAT entry dropped, a
host gone) notices through its socket timeout, reconnects and carries on."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.support.config import fast_settings
from tests.support.proxy import Proxy
from tests.support.servers import RedisServer
from tests.support.streams import ids_in_partition
from writebehind import WriteBehind
from writebehind.core.errors import ConfigurationError
from writebehind.core.redis_client import connect
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio


async def test_worker_recovers_from_stranded_redis_connections(
    wb: WriteBehind, redis_server: RedisServer, mongo_db: Any
) -> None:
    users = wb.collection("users")
    async with Proxy("127.0.0.1", redis_server.port) as proxy:
        # The timeout from the URL, as an operator would set it.
        client = connect(f"redis://127.0.0.1:{proxy.port}/0?socket_timeout=2")
        worker = Worker(client, mongo_db, fast_settings(read_block=0.1))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run)
                await users.wait_persisted(await users.set("before", {"n": 1}), timeout=20)

                assert proxy.strand() > 0  # every connection the worker holds goes silent
                # One write per partition: whichever reads hang, one of these is behind it.
                for p in range(wb.keys.partitions):
                    [doc_id] = ids_in_partition(wb.keys, "users", p, 1)
                    after = await users.set(doc_id, {"n": p})
                    # Without a socket timeout the worker would wait on its read for ever.
                    await users.wait_persisted(after, timeout=20)
                worker.request_stop()
        finally:
            await client.aclose()
    assert await mongo_db["users"].count_documents({}) == 1 + wb.keys.partitions


async def test_worker_refuses_a_socket_timeout_shorter_than_its_blocking_read(
    redis_server: RedisServer, mongo_db: Any
) -> None:
    client = connect(redis_server.url, socket_timeout=1)
    try:
        worker = Worker(client, mongo_db, fast_settings(read_block=0.5))
        with pytest.raises(ConfigurationError, match="socket_timeout"):
            await worker.run()
    finally:
        await client.aclose()
