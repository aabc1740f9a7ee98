"""One client's near caches: a store per collection and the one change feed they share."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from redis.asyncio import Redis

from writebehind.core.keys import KeySpace
from writebehind.sdk.metrics import SDK_NEAR_EVICTIONS, SDK_NEAR_FEED_CONNECTED
from writebehind.sdk.near.follower import Follower
from writebehind.sdk.near.policy import NearCache
from writebehind.sdk.near.records import WHOLE_COLLECTION, Eviction
from writebehind.sdk.near.staleness import FeedClock
from writebehind.sdk.near.store import NearStore


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
        follower = Follower(
            self._redis,
            self._keys,
            self.clock,
            self._block_ms,
            self.apply,
            self.empty,
            self.positioned,
        )
        self._task = asyncio.get_running_loop().create_task(follower.run())

    def servable(self, policy: NearCache) -> bool:
        running = self._task is not None and not self._task.done()
        return running and self.clock.servable(time.monotonic(), policy.max_stale)

    def _block_ms(self) -> int:
        return min((p.block_ms for p in self._policies.values()), default=200)

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

    def empty(self) -> None:
        self._positioned = False
        for store in self._stores.values():
            store.unpositioned()
            store.clear("resync")

    def positioned(self) -> None:
        self._positioned = True
        for store in self._stores.values():
            store.positioned()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # Cancelled until it ends: on Python 3.11, asyncio.wait_for (inside redis-py) can
        # swallow a cancellation that lands as the call it waits for completes (CPython
        # gh-86296), and the feed would then follow the streams for ever (close hung).
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        SDK_NEAR_FEED_CONNECTED.set(0)
        self.clock.lost()
        self.empty()  # a new feed will start from the streams' heads

    def __repr__(self) -> str:
        sizes: dict[str, Any] = {name: len(s) for name, s in self._stores.items()}
        return f"NearLayer({sizes})"
