"""The cross-process side of stampede control: fill leases and fill announcements.

A missing entry's first reader takes a short lease (``SET NX PX`` with an
owner token, in the LEASE script) and loads; the others subscribe to the
entry's channel and sleep until the FILL or RELEASE script announces the end
of the load, then look at the entry once. Waiting issues no Redis commands:
a waiting process sends SUBSCRIBE, one LEASE check after the subscription is
confirmed (so an announcement made before it is not missed), one LEASE check
per announcement, and a last one after ``lock_timeout``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from redis.asyncio import Redis

from writebehind.core.keys import KeySpace


@dataclass(frozen=True, slots=True)
class Place:
    """Where one document's read-side state lives in Redis (all in one hash slot).

    The entry's key is named at once; the lease, channel and markers only when
    asked for (a miss): a hit, most reads, needs none of them.
    """

    doc_id: Any
    entry: str
    partition: int
    collection: str
    keys: KeySpace

    @classmethod
    def of(cls, keys: KeySpace, collection: str, doc_id: Any) -> Place:
        """Raises ``UnsupportedIdType`` for an id documents cannot have."""
        partition, entry = keys.entry_of(collection, doc_id)
        return cls(doc_id, entry, partition, collection, keys)

    @property
    def lease(self) -> str:
        return self.keys.lease(self.partition, self.collection, self.doc_id)

    @property
    def channel(self) -> str:
        return self.keys.fill_channel(self.partition, self.collection, self.doc_id)

    @property
    def marker(self) -> str:
        """The eviction marker: a fill that began before an invalidation loses."""
        return self.keys.eviction_marker(self.partition, self.collection, self.doc_id)

    @property
    def flush_marker(self) -> str:
        """The collection's flush marker in this partition: a fill that began before the
        invalidator last emptied the collection loses."""
        return self.keys.flush_marker(self.partition, self.collection)


def new_token() -> str:
    """A lease owner token: unique per load, so no one releases a lease that is not theirs."""
    return secrets.token_hex(12)


NextAnnouncement = Callable[[float], Awaitable[bool]]


@asynccontextmanager
async def subscribed(redis: Redis, channel: str, limit: float) -> AsyncIterator[NextAnnouncement]:
    """Subscribe to ``channel``; yields ``next(wait)``: True once an announcement came.

    Returns only once Redis has confirmed the subscription (within ``limit``
    seconds), so anything published afterwards is seen. ``next`` may also return
    early without one (redis-py hands back control messages as nothing).
    """
    pubsub = redis.pubsub()
    try:
        with anyio.fail_after(limit):
            await pubsub.subscribe(channel)
            while True:
                message = await pubsub.get_message(timeout=limit)
                if message is not None and message.get("type") == "subscribe":
                    break

        async def next_announcement(wait: float) -> bool:
            if wait <= 0:
                return False
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            return message is not None

        yield next_announcement
    finally:
        with anyio.CancelScope(shield=True):
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
