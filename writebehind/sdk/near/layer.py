"""One client's near caches: a store per collection and the one change feed they share."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from redis.asyncio import Redis

from writebehind.core.keys import KeySpace
from writebehind.core.redis_client import is_cluster
from writebehind.core.version import Version
from writebehind.sdk.metrics import SDK_NEAR_EVICTIONS, SDK_NEAR_FEED_CONNECTED
from writebehind.sdk.near.cluster_feed import ClusterFeed
from writebehind.sdk.near.follower import Follower
from writebehind.sdk.near.policy import NearCache, feed_block_ms
from writebehind.sdk.near.records import WHOLE_COLLECTION, Eviction
from writebehind.sdk.near.staleness import FeedClock
from writebehind.sdk.near.store import NearStore

CLOSE_ATTEMPTS = 10
CLOSE_WAIT = 0.5
"""Seconds to wait for the feed to end after each cancellation, when closing."""


class NearLayer:
    """Made by ``WriteBehind``; the feed starts with the first near-cache read."""

    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys
        self.clock = FeedClock()
        self._stores: dict[str, NearStore] = {}
        self._policies: dict[str, NearCache] = {}
        self._task: asyncio.Task[None] | None = None
        self._positioned = False
        self._placed: asyncio.Event | None = None

    def store(self, collection: str, policy: NearCache) -> NearStore:
        """The collection's store (one per collection; the first policy given sets its bounds)."""
        store = self._stores.get(collection)
        if store is None:
            counter = SDK_NEAR_EVICTIONS

            def evicted(cause: str, n: int) -> None:
                counter.labels(collection, cause).inc(n)

            store = NearStore(policy.max_entries, policy.ttl, evicted)
            if self._positioned:
                store.positioned()
            self._stores[collection] = store
            self._policies[collection] = policy
        return store

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if self._task is not None:
            # The last feed ended on an error: whatever it missed since is not applied.
            self.clock.lost()
            self.empty()
        feed = ClusterFeed if is_cluster(self._redis) else Follower
        follower = feed(
            self._redis,
            self._keys,
            self.clock,
            self._block_ms,
            self.apply,
            self.empty,
            self.positioned,
        )
        self._task = asyncio.get_running_loop().create_task(follower.run())

    async def wait_positioned(self, within: float) -> bool:
        """Start the feed and wait at most ``within`` seconds for it to take its position
        in the streams (before that no reply is kept). Returns whether it has."""
        self.start()
        if self._positioned:
            return True
        if self._placed is None:
            self._placed = asyncio.Event()
        try:
            async with asyncio.timeout(within):
                await self._placed.wait()
        except TimeoutError:
            return False
        return self._positioned

    def servable(self, policy: NearCache) -> bool:
        running = self._task is not None and not self._task.done()
        return running and self.clock.servable(time.monotonic(), policy.max_stale)

    def _block_ms(self) -> int:
        return min((feed_block_ms(p) for p in self._policies.values()), default=200)

    def apply(self, eviction: Eviction) -> None:
        store = self._stores.get(eviction.collection)
        if store is None:
            return
        if eviction.key == WHOLE_COLLECTION:
            store.clear("flush")
        elif eviction.version is None:
            store.invalidated(eviction.key)
        else:
            store.written(eviction.key, eviction.version)

    def newer_seen(self, collection: str, key: str, version: Version) -> None:
        """``key`` (an encoded id) is at ``version`` or newer in Redis, whatever the feed
        has applied: evict an older copy (cause ``captured``), and keep no reply older
        than it that is in flight. A cached computation calls this with the versions it
        captured, so that its function cannot read an older copy here."""
        store = self._stores.get(collection)
        if store is not None:
            store.written(key, version, "captured")

    def empty(self) -> None:
        self._positioned = False
        for store in self._stores.values():
            store.unpositioned()
            store.clear("resync")

    def positioned(self) -> None:
        self._positioned = True
        for store in self._stores.values():
            store.positioned()
        if self._placed is not None:
            self._placed.set()
            self._placed = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # A blocked XREAD can miss one cancellation (redis-py's read timeout and
        # the cancel racing inside asyncio.timeout): ask again until the task ends,
        # so closing the client never hangs on its feed.
        for _ in range(CLOSE_ATTEMPTS):
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_WAIT)
            if task.done():
                break
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()  # retrieved: the feed's last error is not logged as lost
        SDK_NEAR_FEED_CONNECTED.set(0)
        self.clock.lost()
        self.empty()  # a new feed will start from the streams' heads

    def __repr__(self) -> str:
        sizes: dict[str, Any] = {name: len(s) for name, s in self._stores.items()}
        return f"NearLayer({sizes})"
