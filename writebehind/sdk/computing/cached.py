"""``CachedFunction``: an async function whose results live in Redis, kept current.

A call reads the entry and checks its stamps in one Lua call (CHECK). On a
miss, one computation per key runs in this process (``Flights``: a cancelled
caller cancels only itself) and one across processes (the fill lease; the
others wait for the fill's announcement on the entry's channel). The holder
makes sure its dependencies have cache entries, captures the stamps (CAPTURE),
runs the function, and stores the value only if it still holds the lease and
every stamp is still current (FILL). See docs/architecture.md, "Computed values".
"""

from __future__ import annotations

import inspect
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

import anyio

from writebehind.core.errors import CacheUnavailable, ConfigurationError, InvalidInput
from writebehind.sdk.computing import dependencies
from writebehind.sdk.computing.entry import (
    CheckReply,
    complete,
    decode_value,
    encode_value,
    join_stamps,
    validator,
)
from writebehind.sdk.computing.keys import (
    Plan,
    bind,
    call_key,
    check_template,
    default_key,
    make_plan,
    render,
)
from writebehind.sdk.computing.options import Computed, Options
from writebehind.sdk.computing.store import ComputedStore
from writebehind.sdk.metrics import SDK_COMPUTED
from writebehind.sdk.reading.flights import wait_shielded
from writebehind.sdk.reading.guard import UNREACHABLE
from writebehind.sdk.reading.lease import Place, new_token, subscribed
from writebehind.sdk.reading.policy import negative_ttl_ms
from writebehind.sdk.reading.xfetch import refresh_due

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind
    from writebehind.sdk.collection import Collection

P = ParamSpec("P")
R = TypeVar("R")

_MISS_OUTCOMES = {"miss": "miss", "damaged": "undecodable"}
"""The counted outcome of CHECK's reasons that are no ``stale_<reason>``."""

_marks = itertools.count(1)


def _mark() -> int:
    """A point in this process's order of events: later marks are larger.

    A flight answers with the mark of the last moment its value was known to be
    current; a call made after that (a larger mark at its start) must not take it.
    """
    return next(_marks)


class CachedFunction(Generic[P, R]):
    """The decorated function: ``await f(...)``, ``f.invalidate(...)``, ``f.refresh(...)``,
    ``f.validated(...)``. Made by ``WriteBehind.cached``, which raises ``ConfigurationError``
    for a function that is not async or options out of range."""

    def __init__(
        self, wb: WriteBehind, store: ComputedStore, fn: Callable[P, Awaitable[R]], options: Options
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigurationError(f"a cached function must be async (a coroutine): {fn!r}")
        self._wb = wb
        self._store = store
        self._fn = fn
        self._options = options
        self._signature = inspect.signature(fn)
        parameters = list(self._signature.parameters)
        if isinstance(options.key, str):
            check_template(options.key, parameters, "key")
        for tag in options.tags:
            check_template(tag, parameters, "tag")
        self.name = f"{fn.__module__}.{fn.__qualname__}"
        self.namespace = options.namespace or self.name
        store.namespaces.add(self.namespace)
        self._ttl_ms = max(1, int(options.ttl * 1000))
        lock_timeout = options.lock_timeout or wb.reads.lock_timeout
        self._lease_ms = max(1, int(lock_timeout * 1000))
        self.__wrapped__ = fn
        self.__doc__ = fn.__doc__
        self._load_seconds = 0.05  # XFetch's delta until a computation has been timed
        self._collections: dict[str, Collection] = {}  # the dependencies' readers

    # -- public -------------------------------------------------------------------

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """The value for these arguments: from Redis if current, else computed (once).

        Raises whatever the function raises (never cached), ``InvalidInput``
        for arguments that make no key or a value BSON cannot encode,
        ``ClientClosed`` after ``aclose()``. Redis unavailable: computed, not stored.
        """
        return (await self.validated(*args, **kwargs)).value

    async def validated(self, *args: P.args, **kwargs: P.kwargs) -> Computed[R]:
        """What ``__call__`` returns, with its source and validator (see ``Computed``).

        Raises: as ``__call__``.
        """
        with self._wb.calling():
            called = _mark()
            plan = self._plan(args, kwargs)
            if not await self._journal_allows(plan):
                return await self._fresh(args, kwargs, "journaled")
            try:
                reply = await self._store.check(plan, "c", self._lease_ms)
            except CacheUnavailable:
                return await self._fresh(args, kwargs, "degraded")
            served = self._serve(plan, reply)
            if served is not None:
                self._maybe_refresh(plan, reply, args, kwargs)
                return served
            # A flight already in flight may have begun before this call, and before
            # an invalidation or a write this call must see (made by this process just
            # before it). Its answer is taken only if known current after this call
            # began (stored by a fill, or read from Redis); else one more flight, which
            # begins after this call did.
            for _ in range(2):
                futures = self._wb.read_flights.start(
                    [plan.entry], lambda _: self._flight(plan, args, kwargs)
                )
                answer: tuple[Computed[R], int] = await wait_shielded(futures[plan.entry])
                result, as_of = answer
                if as_of > called:
                    break
                self._count("flight_outdated")
            return result

    async def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Compute now and store the value (a computation in flight elsewhere loses its fill).

        Raises ``CacheUnavailable`` if Redis is unavailable (nothing stored;
        the value is not returned: ``refresh`` is about the stored value);
        ``NotReplicated`` (``made`` set, ``versions`` empty) when the client has
        ``wait_replicas`` and fewer replicas confirmed the stored value within
        ``wait_timeout``: it is stored on the primary; whatever the function raises;
        ``ClientClosed`` after ``aclose()``.
        """
        with self._wb.calling():
            plan = self._plan(args, kwargs)
            if not await self._store.settle():
                raise CacheUnavailable(
                    "the journal could not be applied: Redis is unavailable, or fewer "
                    "replicas than wait_replicas confirmed it"
                )
            token = new_token()
            await self._store.check(plan, "f", self._lease_ms, token)
            computed, _ = await self._compute_and_fill(
                plan, token, args, kwargs, strict=True, replicated=True
            )
            return computed.value

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the entry for these arguments; a computation in flight cannot store afterwards.

        Raises ``CacheUnavailable`` when Redis is unavailable, unless the client
        has a journal (``WriteBehind(journal=True)``): then it is kept and applied
        before Redis serves a computed value again. ``NotReplicated`` (``made``
        set, ``versions`` empty) when the client has ``wait_replicas`` and fewer
        replicas confirmed the invalidation within ``wait_timeout``: it is made on
        the primary (invalidating again is harmless). ``ClientClosed`` after ``aclose()``.
        """
        with self._wb.calling():
            await self._store.invalidate(self._plan(args, kwargs), self.name)

    # -- the call's keys ----------------------------------------------------------

    def _plan(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Plan:
        o = self._options
        arguments = bind(self._signature, args, kwargs)
        if o.key is None:
            key = default_key(self.name, arguments)
        elif isinstance(o.key, str):
            key = render(o.key, arguments, "key")
        else:
            key = call_key(o.key, args, kwargs)
        tags = [render(t, arguments, "tag") for t in o.tags]
        deps = dependencies.listed(self._options.depends_on, args, kwargs)
        prefix = self._wb.keys.prefix
        entries = [Place.of(self._wb.keys, c, i).entry for c, i in deps]
        return make_plan(prefix, self.namespace, key, tags, deps, entries)

    # -- reads ----------------------------------------------------------------------

    def _count(self, outcome: str) -> None:
        SDK_COMPUTED.labels(self.name, self.namespace, outcome).inc()

    async def _journal_allows(self, plan: Plan) -> bool:
        journal = self._store.journal
        if journal is None or journal.empty:
            return True
        if await self._store.settle():
            return True
        return not journal.covers(plan.entry, plan.tags, plan.namespace)

    def _serve(self, plan: Plan, reply: CheckReply) -> Computed[R] | None:
        """The value of a hit, or ``None`` (counted: a miss, stale, or undecodable)."""
        if reply.status != "hit":
            self._count(_MISS_OUTCOMES.get(reply.reason) or f"stale_{reply.reason}")
            return None
        if reply.negative:
            self._count("negative_hit")
            return Computed(None, "redis", validator(plan.entry, reply.stamps, b""))  # type: ignore[arg-type]
        try:
            value = decode_value(reply.body or b"", self._wb.codec_options)
        except InvalidInput:
            self._count("undecodable")
            return None
        self._count("hit")
        return Computed(value, "redis", validator(plan.entry, reply.stamps, reply.body or b""))

    async def _flight(
        self, plan: Plan, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {plan.entry: await self._load(plan, args, kwargs)}

    async def _load(
        self, plan: Plan, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[Computed[R], int]:
        """One flight: take the lease and compute, or wait for the holder's fill. Answers
        the value and the mark (``_mark``) of the last moment it was known current."""
        token = new_token()
        checked = _mark()
        try:
            reply = await self._store.check(plan, "m", self._lease_ms, token)
        except CacheUnavailable:
            return await self._fresh_marked(args, kwargs, "degraded")
        deadline = anyio.current_time() + self._lease_ms / 1000
        if reply.status == "wait":
            self._count("lease_wait")
            try:
                async with subscribed(
                    self._wb.redis, plan.channel, self._wb.reads.redis_timeout
                ) as announced:
                    while reply.status == "wait":
                        checked = _mark()
                        reply = await self._store.check(plan, "m", self._lease_ms, token)
                        left = deadline - anyio.current_time()
                        if reply.status != "wait" or left <= 0:
                            break
                        await announced(left)
            except (CacheUnavailable, *UNREACHABLE):
                return await self._fresh_marked(args, kwargs, "degraded")
        if reply.status == "hit":
            served = self._serve(plan, reply)
            if served is not None:
                return served, checked
            try:  # undecodable: recompute over it
                await self._store.check(plan, "f", self._lease_ms, token)
            except CacheUnavailable:
                return await self._fresh_marked(args, kwargs, "degraded")
            return await self._compute_and_fill(plan, token, args, kwargs)
        if reply.status == "lease":
            return await self._compute_and_fill(plan, token, args, kwargs)
        self._count("lease_timeout")  # held elsewhere past lock_timeout: compute, store nothing
        return await self._fresh_marked(args, kwargs, "not_stored")

    # -- computing --------------------------------------------------------------------

    async def _fresh(self, args: Sequence[Any], kwargs: Mapping[str, Any], why: str) -> Computed[R]:
        """Compute without Redis: nothing captured, nothing stored."""
        self._count(why)
        value = await self._run(args, kwargs)
        if value is not None:  # the same refusal, and the same value, as a stored one
            value = self._as_stored(encode_value(value, self._wb.codec_options))
        return Computed(value, "fresh", None)

    async def _fresh_marked(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], why: str
    ) -> tuple[Computed[R], int]:
        began = _mark()
        return await self._fresh(args, kwargs, why), began

    def _as_stored(self, body: bytes) -> R:
        """The value as a hit returns it (BSON's round trip: lists for tuples, datetimes
        in ms under the client's codec options), so every call gets the same value."""
        value: R = decode_value(body, self._wb.codec_options)
        return value

    async def _run(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> R:
        self._count("computed")
        began = time.monotonic()
        value = await self._fn(*args, **kwargs)
        self._load_seconds = 0.8 * self._load_seconds + 0.2 * (time.monotonic() - began)
        return value

    async def _compute_and_fill(
        self,
        plan: Plan,
        token: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        *,
        strict: bool = False,
        replicated: bool = False,
    ) -> tuple[Computed[R], int]:
        """Holding the lease: capture, compute, store if still current. Answers the value
        and the mark of the last moment it was known current (``_load``). ``strict``:
        ``CacheUnavailable`` is raised, not computed fresh; ``replicated``: the store
        waits for ``wait_replicas`` (``ComputedStore.fill``)."""
        try:
            await dependencies.fill_entries(self._wb, self._collections, plan)
            captured = _mark()
            try:
                values = await self._store.capture(plan, self._ttl_ms, self._lease_ms)
            except CacheUnavailable:
                if strict:
                    raise
                return await self._fresh_marked(args, kwargs, "degraded")
            dependencies.forget_older_near_copies(self._wb, plan, values)
            began = time.monotonic()
            value = await self._run(args, kwargs)
            load_ms = max(1, int((time.monotonic() - began) * 1000))
            body = b"" if value is None else encode_value(value, self._wb.codec_options)
            if value is not None:
                value = self._as_stored(body)
            stamps = join_stamps(values)
            ttl_ms = self._ttl_for(value, values)  # runs cache_if, which may raise
        except BaseException:
            await self._store.release(plan, token)
            raise
        if ttl_ms <= 0:
            self._count("not_stored")
            checked = _mark()
            current = await self._store.release_current(plan, token, stamps)
            as_of = checked if current else captured
            return Computed(value, "computed", validator(plan.entry, stamps, body)), as_of
        filling = _mark()
        try:
            outcome = await self._store.fill(
                plan,
                token,
                stamps,
                body,
                value is None,
                ttl_ms,
                load_ms,
                self._lease_ms,
                replicated=replicated,
            )
        except CacheUnavailable:
            if strict:
                raise
            self._count("degraded")
            return Computed(value, "fresh", None), captured
        self._count(f"fill_{outcome}")
        as_of = filling if outcome == "filled" else captured
        return Computed(value, "computed", validator(plan.entry, stamps, body)), as_of

    def _ttl_for(self, value: Any, values: Sequence[str]) -> int:
        """The entry's TTL in ms; 0: not stored (``None`` without negative caching,
        ``cache_if`` said no, a dependency had no cache entry to take a version from)."""
        if not complete(values):
            return 0
        if value is None:
            return min(self._ttl_ms, negative_ttl_ms(self._wb.reads))
        cache_if = self._options.cache_if
        if cache_if is not None and not cache_if(value):
            return 0
        return self._ttl_ms

    # -- early refresh (XFetch) ---------------------------------------------------------

    def _maybe_refresh(
        self, plan: Plan, reply: CheckReply, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        beta = self._options.early_refresh
        if beta is None:
            beta = self._wb.reads.early_refresh
        if beta <= 0 or reply.ttl_ms < 0:
            return
        if refresh_due(
            beta=beta,
            load_ms=reply.load_ms,
            fallback_delta=self._load_seconds,
            ttl_ms=reply.ttl_ms,
            rand=random.random,
        ):
            self._wb.read_flights.refresh_once(
                plan.entry, lambda: self._refresh_early(plan, args, kwargs)
            )

    async def _refresh_early(
        self, plan: Plan, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        token = new_token()
        try:
            reply = await self._store.check(plan, "r", self._lease_ms, token)
            if reply.status == "lease":
                self._count("early_refresh")
                await self._compute_and_fill(plan, token, args, kwargs, strict=True)
        except Exception:  # the entry keeps serving until it expires
            self._count("early_refresh_failed")
