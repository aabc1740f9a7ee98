"""An idle but connected feed is not "behind": a quiet process keeps serving its near cache.

With no writes, each of the feed's blocking ``XREAD``s returns empty after its
``BLOCK``. That reply says more than "caught up as of when it was sent": the
server waited the whole ``BLOCK`` and no record came, so nothing was written
until then. Counting only the send time made a quiet feed look ``2 x block``
behind just before each reply was handled, which is ``max_stale`` itself
when ``block`` is half of it: a busy application (its event loop handling
the reply a few ms late) then read Redis instead of its near cache for no reason.
"""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel
import pytest
from prometheus_client import REGISTRY

from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.sdk.near import NearCache

pytestmark = pytest.mark.anyio

NEAR = NearCache(max_entries=100, ttl=60.0, max_stale=0.6, block=0.3)
QUIET_FOR = 3.0
"""Seconds of no writes watched: ten of the feed's empty replies."""
BUSY = 0.005
"""Seconds the event loop is held by application work between two reads."""


def _stale_reads() -> float:
    labels = {"collection": "users", "outcome": "stale"}
    return REGISTRY.get_sample_value("writebehind_sdk_near_reads_total", labels) or 0.0


async def test_a_quiet_feed_keeps_the_near_cache_served(wb: WriteBehind) -> None:
    users = wb.collection("users", reads=ReadPolicy(near=NEAR))
    await users.set("quiet", {"n": 1})
    await users.get("quiet")

    async def ready() -> bool:
        return wb.near.servable(NEAR)

    await wait_until(ready, timeout=10, message="the near-cache feed caught up")
    await users.get("quiet")
    stale = _stale_reads()
    reads = 0
    deadline = time.monotonic() + QUIET_FOR
    while time.monotonic() < deadline:
        # An application busy in its event loop: the feed's empty reply waits its turn.
        time.sleep(BUSY)
        assert await users.get("quiet") == {"_id": "quiet", "n": 1}
        reads += 1
        await anyio.lowlevel.checkpoint()
    assert reads > QUIET_FOR / BUSY / 2
    assert _stale_reads() == stale, (
        f"{_stale_reads() - stale:.0f} of {reads} reads found the idle feed behind"
    )
