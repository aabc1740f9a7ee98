"""The Redis side of cached computations: every call through the client's ``RedisGuard``.

One ``ComputedStore`` per ``WriteBehind``. Each method is one script call
(``core.script_calls.call_script``: NOSCRIPT safe) under the read deadline and the
circuit breaker, so a dead Redis raises ``CacheUnavailable`` fast. The
journal of invalidations Redis did not take lives here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from redis.exceptions import ResponseError

from writebehind.core.errors import CacheUnavailable
from writebehind.core.script_calls import call_script
from writebehind.core.scripts_computed import ComputedScripts
from writebehind.sdk.computing.entry import CheckReply, parse_capture, parse_check
from writebehind.sdk.computing.journal import Invalidation, Journal
from writebehind.sdk.computing.keys import (
    Plan,
    channel_of,
    global_generation,
    lease_of,
    namespace_generation,
    tag_generation,
)
from writebehind.sdk.metrics import SDK_COMPUTED, SDK_COMPUTED_JOURNAL

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind

T = TypeVar("T")

GENERATION_MARGIN_MS = 60_000
"""How much longer than the entries that captured it a generation key lives (ms)."""


def generation_ttl_ms(ttl_ms: int, lease_ms: int) -> int:
    """A generation outlives every entry that captured it: the entry's TTL, the
    longest a fill may come after its capture (the lease), and a margin."""
    return ttl_ms + lease_ms + GENERATION_MARGIN_MS


class ComputedStore:
    """Redis calls and the invalidation journal of one client's cached functions."""

    def __init__(self, wb: WriteBehind, journal: Journal | None) -> None:
        self._wb = wb
        self.scripts = ComputedScripts(wb.redis)
        self.journal = journal
        self._applying = anyio.Lock()
        self._depth = SDK_COMPUTED_JOURNAL.labels(wb.keys.prefix)
        self._depth.set(0)
        self.namespaces: set[str] = set()
        """The namespaces this client's cached functions declare (bounded metric labels)."""

    @property
    def prefix(self) -> str:
        return self._wb.keys.prefix

    async def _call(self, what: str, make: Callable[[], Awaitable[T]], items: int = 1) -> T:
        """``make()`` through the guard; an error reply (maxmemory, BUSY) counts as unavailable."""
        try:
            return await self._wb.redis_guard.call(make, self._wb.reads.redis_timeout, what, items)
        except ResponseError as exc:
            raise CacheUnavailable(f"Redis refused {what}: {exc}", written=False) from exc

    def _script(self, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Callable[[], Any]:
        return lambda: call_script(self._wb.redis, script, keys, args)

    # -- reads and fills ------------------------------------------------------

    async def check(self, plan: Plan, mode: str, lease_ms: int, token: str = "") -> CheckReply:
        """The CHECK script (``core/scripts_computed.py``): a hit, or a lease of ``lease_ms``
        by ``mode``."""
        keys = [plan.entry, plan.lease, *plan.stamp_keys]
        args = [mode, token, lease_ms, len(plan.generations), plan.fingerprint]
        reply = await self._call("a computed read", self._script(self.scripts.check, keys, args))
        return parse_check(reply)

    async def capture(self, plan: Plan, ttl_ms: int, lease_ms: int) -> list[str]:
        """The stamps to compute under, in ``plan.stamp_keys`` order."""
        args = [len(plan.generations), generation_ttl_ms(ttl_ms, lease_ms)]
        reply = await self._call(
            "a capture", self._script(self.scripts.capture, plan.stamp_keys, args)
        )
        return parse_capture(reply)

    async def fill(
        self,
        plan: Plan,
        token: str,
        stamps: str,
        body: bytes,
        negative: bool,
        ttl_ms: int,
        load_ms: int,
        lease_ms: int,
    ) -> str:
        """The FILL script's outcome (``filled`` or why not)."""
        keys = [plan.entry, plan.lease, *plan.stamp_keys]
        args = [
            token,
            len(plan.generations),
            stamps,
            plan.fingerprint,
            body,
            "1" if negative else "",
            ttl_ms,
            load_ms,
            plan.channel,
            generation_ttl_ms(ttl_ms, lease_ms),
        ]
        reply = await self._call("a computed fill", self._script(self.scripts.fill, keys, args))
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    async def release(self, plan: Plan, token: str) -> None:
        """Give the lease back without a fill (best effort: else it expires by itself)."""
        script = self._wb.scripts.release
        try:
            with anyio.CancelScope(shield=True):
                await self._call(
                    "a lease release", self._script(script, [plan.lease], [token, plan.channel])
                )
        except CacheUnavailable:
            pass

    async def release_current(self, plan: Plan, token: str, stamps: str) -> bool:
        """Give the lease back without a fill; whether the value computed under ``stamps``
        is still current (``RELEASE_CURRENT``). Best effort: ``False`` if Redis is away."""
        keys = [plan.lease, *plan.stamp_keys]
        args = [token, len(plan.generations), stamps, plan.channel]
        try:
            with anyio.CancelScope(shield=True):
                reply = await self._call(
                    "a lease release", self._script(self.scripts.release_current, keys, args)
                )
        except CacheUnavailable:
            return False
        return (reply.decode() if isinstance(reply, bytes) else str(reply)) == "current"

    # -- invalidation -----------------------------------------------------------

    async def invalidate(self, plan: Plan, function: str) -> None:
        """Drop one entry and its lease, or journal it (``CacheUnavailable`` without a journal)."""
        item = Invalidation("key", plan.entry)
        SDK_COMPUTED.labels(function, plan.namespace, "invalidation").inc()
        await self._apply_or_journal(
            [item], lambda: self._invalidate_entry(plan.entry, plan.lease, plan.channel)
        )

    async def _invalidate_entry(self, entry: str, lease: str, channel: str) -> None:
        await call_script(self._wb.redis, self.scripts.invalidate, [entry, lease], [channel])

    async def bump(self, items: Sequence[Invalidation]) -> None:
        """Invalidate tags and namespaces (their generations), or journal them."""
        keys = [self._generation_key(item) for item in items]
        for item in items:
            SDK_COMPUTED.labels("", self._namespace_label(item), item.kind).inc()
        await self._apply_or_journal(items, lambda: self._bump(keys))

    async def _bump(self, keys: Sequence[str]) -> None:
        await call_script(self._wb.redis, self.scripts.bump, keys, [])

    def _namespace_label(self, item: Invalidation) -> str:
        """A bumped namespace's metric label: its name if a cached function of this client
        declares it, else ``other`` (names made per call would grow the series without bound)."""
        if item.kind != "namespace":
            return ""
        return item.name if item.name in self.namespaces else "other"

    def _generation_key(self, item: Invalidation) -> str:
        if item.kind == "tag":
            return tag_generation(self.prefix, item.name)
        return namespace_generation(self.prefix, item.name)

    async def _apply_or_journal(
        self, items: Sequence[Invalidation], make: Callable[[], Awaitable[None]]
    ) -> None:
        # Journaled invalidations go first: applied after this one, an older
        # journaled one would do no harm, but the journal must not outlive Redis's return.
        if self.journal is not None and not self.journal.empty:
            await self.settle()
        try:
            await self._call("an invalidation", make, len(items))
        except CacheUnavailable:
            if self.journal is None:
                raise
            for item in items:
                self.journal.add(item)
            self._depth.set(len(self.journal))

    async def settle(self) -> bool:
        """Apply the journal to Redis; whether it is empty now (``False``: Redis is away)."""
        journal = self.journal
        if journal is None or journal.empty:
            return True
        async with self._applying:
            pending = journal.pending()
            if not pending.items and not pending.overflowed:
                return True
            try:
                await self._call(
                    "the journal", lambda: self._apply(pending.items, pending.overflowed)
                )
            except CacheUnavailable:
                return False
            journal.applied(pending)
            self._depth.set(len(journal))
            return journal.empty

    async def _apply(self, items: Sequence[Invalidation], overflowed: bool) -> None:
        redis = self._wb.redis
        generations = [self._generation_key(i) for i in items if i.kind != "key"]
        if overflowed:
            generations.append(global_generation(self.prefix))
        if generations:
            await call_script(redis, self.scripts.bump, generations, [])
        # Each through the INVALIDATE script, as when Redis was there: it drops the
        # entry and its lease and announces it, so other processes' waiters wake at once.
        for entry in dict.fromkeys(i.name for i in items if i.kind == "key"):
            await self._invalidate_entry(entry, lease_of(entry), channel_of(entry))
