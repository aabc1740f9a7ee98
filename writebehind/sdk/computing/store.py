"""The Redis side of cached computations: every call through the client's ``RedisGuard``.

One ``ComputedStore`` per ``WriteBehind``. Each method is one script call
(``core.script_calls.call_script``: NOSCRIPT safe) under the read deadline and the
circuit breaker, so a dead Redis raises ``CacheUnavailable`` fast. The
journal of invalidations Redis did not take lives here too.

With ``WriteBehind(wait_replicas=N)``, what makes values stale (``invalidate``,
``invalidate_tags``, ``bump_namespace``, an applied journal) and ``refresh``'s
store are followed by ``WAIT`` on their connection, as writes are: a failover
right after must not lose them, or the replica promoted would serve the values
they made stale. Fewer replicas in time raises ``NotReplicated`` (``made`` says
what is in effect on the primary); a journal stays until replicas confirm it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from redis.exceptions import ResponseError

from writebehind.core.errors import CacheUnavailable, NotReplicated
from writebehind.core.script_calls import ScriptCall, call_script, fewest_replicas, run_scripts
from writebehind.core.scripts_computed import ComputedScripts
from writebehind.sdk.computing.entry import CheckReply, parse_capture, parse_check, parse_reset
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

log = logging.getLogger("writebehind.sdk")

LOGGED_RESETS = 100
"""Damaged generation keys a client logs (each once); past that, only counted."""

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
        # Summed over the clients of a prefix: each adds the change of its own depth.
        self._depth = SDK_COMPUTED_JOURNAL.labels(wb.keys.prefix)
        self._reported = 0
        self._logged: set[str] = set()
        self.namespaces: set[str] = set()
        """The namespaces this client's cached functions declare (bounded metric labels)."""

    def _report_depth(self) -> None:
        """Add the change of this journal's depth to the prefix's gauge."""
        depth = len(self.journal) if self.journal is not None else 0
        self._depth.inc(depth - self._reported)
        self._reported = depth

    def close(self) -> None:
        """The client is closing: its journal no longer counts (what it holds is lost, logged)."""
        if self.journal is not None and not self.journal.empty:
            log.warning(
                "closing a WriteBehind (prefix %r) whose journal still holds %d invalidation(s)%s: "
                "the computed values they cover stay until their TTL",
                self.prefix,
                len(self.journal),
                " and overflowed" if self.journal.overflowed else "",
            )
        self._depth.dec(self._reported)
        self._reported = 0

    def _generations_reset(self, keys: Sequence[str]) -> None:
        """Count (and log, once per key) generation keys a script found damaged and reset."""
        if not keys:
            return
        SDK_COMPUTED.labels("", "", "generation_reset").inc(len(keys))
        for key in keys:
            if key in self._logged or len(self._logged) >= LOGGED_RESETS:
                continue
            self._logged.add(key)
            log.warning(
                "the generation key %r held no counter (another Redis type, or text that is no "
                "decimal): reset; every computed value stamped under it is stale",
                key,
            )

    async def _replicated(self, calls: Sequence[ScriptCall]) -> tuple[list[Any], int | None]:
        """Run ``calls``; with ``wait_replicas``, in one pipeline with a trailing ``WAIT``
        (it counts the writes of its own connection). Their replies, and how many replicas
        confirmed them (``None``: not asked). Raises what the calls raise."""
        wanted = self._wb.wait_replicas
        redis = self._wb.redis
        if not wanted:
            return [await call_script(redis, c.script, c.keys, c.args) for c in calls], None
        wait_ms = max(1, int(self._wb.wait_timeout * 1000))
        replies, waits = await run_scripts(redis, calls, trailing=("WAIT", wanted, wait_ms))
        return replies, fewest_replicas(waits)

    def _confirm(self, replicas: int | None, made: str) -> None:
        """``NotReplicated`` (``made`` on the primary) if fewer replicas than asked confirmed."""
        wanted = self._wb.wait_replicas
        if replicas is not None and replicas < wanted:
            raise NotReplicated([], replicas, wanted, made=made)

    @property
    def prefix(self) -> str:
        return self._wb.keys.prefix

    async def _call(
        self, what: str, make: Callable[[], Awaitable[T]], items: int = 1, *, waits: bool = False
    ) -> T:
        """``make()`` through the guard; an error reply (maxmemory, BUSY) counts as unavailable.
        ``waits``: ``make`` may ``WAIT`` for replicas (the write deadline then)."""
        timeout = self._wb.write_timeout if waits else self._wb.reads.redis_timeout
        try:
            return await self._wb.redis_guard.call(make, timeout, what, items)
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
        values, reset = parse_capture(reply)
        self._generations_reset(reset)
        return values

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
        *,
        replicated: bool = False,
    ) -> str:
        """The FILL script's outcome (``filled`` or why not).

        ``replicated`` (``refresh``): with ``wait_replicas``, a value stored must be
        confirmed by that many replicas, else ``NotReplicated`` (stored on the primary).
        """
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
        if not replicated:
            reply = await self._call("a computed fill", self._script(self.scripts.fill, keys, args))
            return reply.decode() if isinstance(reply, bytes) else str(reply)
        call = ScriptCall(self.scripts.fill, keys, args)
        replies, replicas = await self._call(
            "a computed fill", lambda: self._replicated([call]), waits=True
        )
        outcome = replies[0].decode() if isinstance(replies[0], bytes) else str(replies[0])
        if outcome == "filled":
            self._confirm(replicas, "a refresh's stored value")
        return outcome

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

    async def _invalidate_entry(self, entry: str, lease: str, channel: str) -> int | None:
        call = ScriptCall(self.scripts.invalidate, [entry, lease], [channel])
        return (await self._replicated([call]))[1]

    async def bump(self, items: Sequence[Invalidation]) -> None:
        """Invalidate tags and namespaces (their generations), or journal them."""
        keys = [self._generation_key(item) for item in items]
        for item in items:
            SDK_COMPUTED.labels("", self._namespace_label(item), item.kind).inc()
        await self._apply_or_journal(items, lambda: self._bump(keys))

    async def _bump(self, keys: Sequence[str]) -> int | None:
        replies, replicas = await self._replicated([ScriptCall(self.scripts.bump, keys, [])])
        self._generations_reset(parse_reset(replies[0][1]))
        return replicas

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
        self, items: Sequence[Invalidation], make: Callable[[], Awaitable[int | None]]
    ) -> None:
        """Apply ``items`` (``make``), or journal them when Redis is unavailable. Raises
        ``NotReplicated`` if applied but fewer replicas than ``wait_replicas`` confirmed."""
        # Journaled invalidations go first: applied after this one, an older
        # journaled one would do no harm, but the journal must not outlive Redis's return.
        if self.journal is not None and not self.journal.empty:
            await self.settle()
        try:
            replicas = await self._call("an invalidation", make, len(items), waits=True)
        except CacheUnavailable:
            if self.journal is None:
                raise
            for item in items:
                self.journal.add(item)
            self._report_depth()
            return
        made = "an invalidation" if len(items) == 1 else f"{len(items)} invalidations"
        self._confirm(replicas, made)

    async def settle(self) -> bool:
        """Apply the journal to Redis; whether it is empty now (``False``: Redis is away, or
        fewer replicas than ``wait_replicas`` confirmed it: it stays, to be applied again)."""
        journal = self.journal
        if journal is None or journal.empty:
            return True
        async with self._applying:
            pending = journal.pending()
            if not pending.items and not pending.overflowed:
                return True
            try:
                replicas = await self._call(
                    "the journal",
                    lambda: self._apply(pending.items, pending.overflowed),
                    waits=True,
                )
            except CacheUnavailable:
                return False
            if replicas is not None and replicas < self._wb.wait_replicas:
                # In effect on the primary only: kept (applying it again is harmless), and
                # the calls it covers are computed fresh until replicas confirm it.
                return False
            journal.applied(pending)
            self._report_depth()
            return journal.empty

    async def _apply(self, items: Sequence[Invalidation], overflowed: bool) -> int | None:
        """Apply the journal in one pipeline; how many replicas confirmed it (``None``: not
        asked)."""
        generations = [self._generation_key(i) for i in items if i.kind != "key"]
        if overflowed:
            generations.append(global_generation(self.prefix))
        calls = [ScriptCall(self.scripts.bump, generations, [])] if generations else []
        # Each through the INVALIDATE script, as when Redis was there: it drops the
        # entry and its lease and announces it, so other processes' waiters wake at once.
        for entry in dict.fromkeys(i.name for i in items if i.kind == "key"):
            calls.append(
                ScriptCall(self.scripts.invalidate, [entry, lease_of(entry)], [channel_of(entry)])
            )
        replies, replicas = await self._replicated(calls)
        if generations:
            self._generations_reset(parse_reset(replies[0][1]))
        return replicas
