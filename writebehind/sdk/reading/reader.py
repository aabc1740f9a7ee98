"""The read path of one collection: cache first, fenced fills, stampede control, degraded reads.

``get``/``get_many`` read the cache entries in one round trip. A miss loads
from MongoDB through the in-process flights (one load per key per process)
and the cross-process lease (one load per key across processes), then fills
the entry with the FILL script's version compare-and-set. When Redis does not
answer within ``redis_timeout``, or the breaker is open, reads go to MongoDB
and are counted as degraded. See docs/architecture.md, "Reading".
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from writebehind.core.codec import decode_document
from writebehind.core.errors import CacheUnavailable, InvalidInput
from writebehind.core.keys import encode_id
from writebehind.core.replies import is_torn_connection
from writebehind.core.script_calls import ScriptCall, call_script, run_scripts
from writebehind.core.version import Version
from writebehind.sdk.metrics import SDK_READS
from writebehind.sdk.reading.entry import (
    ENTRY_FIELDS,
    VERSION_FIELDS,
    CachedEntry,
    ScriptReply,
    Versioned,
    parse_entry,
    parse_script_reply,
    parse_version_fields,
)
from writebehind.sdk.reading.flights import wait_shielded
from writebehind.sdk.reading.guard import UNREACHABLE
from writebehind.sdk.reading.lease import NextAnnouncement, Place, new_token, subscribed
from writebehind.sdk.reading.loading import Loaded, load_documents
from writebehind.sdk.reading.policy import ReadPolicy, entry_ttl_ms, negative_ttl_ms
from writebehind.sdk.reading.xfetch import refresh_due

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """One id's answer, and where it came from (how it is counted)."""

    doc: Document | None
    level: str
    outcome: str
    filled: bool = False
    version: Version | None = None  # the version answered (the near cache keeps it)


class Reader:
    """Reads one collection. Made by ``Collection``; shares the client's flights and breaker."""

    def __init__(
        self,
        wb: WriteBehind,
        collection: str,
        policy: ReadPolicy,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._wb = wb
        self.name = collection
        self.policy = policy
        self._rand = rand
        self._load_seconds = 0.05  # XFetch's delta where an entry does not record its own
        self._counters: dict[tuple[str, str], Any] = {}

    # -- public ---------------------------------------------------------------

    async def get(self, doc_id: Any) -> Document | None:
        return (await self.get_many([doc_id]))[doc_id]

    async def get_many(self, ids: Iterable[Any]) -> dict[Any, Document | None]:
        answers = await self._answers(checked_ids(ids))
        return {doc_id: answer.doc for doc_id, answer in answers.items()}

    async def warm(self, ids: Iterable[Any]) -> int:
        answers = await self._answers(checked_ids(ids))
        return sum(1 for answer in answers.values() if answer.filled)

    async def get_versioned(self, doc_id: Any) -> Versioned:
        encode_id(doc_id)  # before hashing it: an unhashable id is refused as any bad id
        return self._versioned(doc_id, (await self._answers([doc_id]))[doc_id])

    async def version(self, doc_id: Any) -> Version | None:
        """The entry's version alone (HMGET of ``VERSION_FIELDS``: no body); a miss goes
        through the fenced read path, which fills the entry."""
        place = self._place(doc_id)
        try:
            fields = await self._redis(lambda: self._wb.redis.hmget(place.entry, VERSION_FIELDS))
        except CacheUnavailable:
            answer = self._count(await self._degraded([doc_id]))[doc_id]
            return self._versioned(doc_id, answer).version
        outcome, version = parse_version_fields(fields)
        if outcome is not None:
            self._event("redis", outcome)
            return None if version is None else version.for_document(self.name, doc_id)
        answer = self._count(await self._load([doc_id], {doc_id: place}))[doc_id]
        return self._versioned(doc_id, answer).version

    def _versioned(self, doc_id: Any, answer: Answer) -> Versioned:
        if answer.doc is None or answer.version is None:
            return Versioned(answer.doc, None)
        return Versioned(answer.doc, answer.version.for_document(self.name, doc_id))

    def wrote(self, doc_id: Any, version: Version) -> None:
        """This process wrote ``doc_id`` at ``version`` (the near cache's hook; here nothing)."""

    # -- the read -------------------------------------------------------------

    async def _answers(self, ids: Iterable[Any]) -> dict[Any, Answer]:
        wanted = list(dict.fromkeys(ids))
        places = {doc_id: self._place(doc_id) for doc_id in wanted}  # bad ids raise first
        if not places:
            return {}
        try:
            entries = await self._redis(
                lambda: self._read_entries(list(places.values())), len(places)
            )
        except CacheUnavailable:
            return self._count(await self._degraded(wanted))
        answers: dict[Any, Answer] = {}
        misses: list[Any] = []
        for doc_id, entry in zip(wanted, entries, strict=True):
            if entry.present:
                answers[doc_id] = self._from_entry(entry, "redis")
                self._maybe_refresh(places[doc_id], entry)
            else:
                misses.append(doc_id)
        if misses:
            answers.update(await self._load(misses, places))
        self._count(answers)
        return {doc_id: answers[doc_id] for doc_id in wanted}

    def _place(self, doc_id: Any) -> Place:
        encode_id(doc_id)
        return Place.of(self._wb.keys, self.name, doc_id)

    async def _redis(self, make: Callable[[], Any], items: int = 1) -> Any:
        return await self._wb.redis_guard.call(make, self.policy.redis_timeout, "a read", items)

    async def _read_entries(self, places: Sequence[Place]) -> list[CachedEntry]:
        if len(places) == 1:  # one command, not a pipeline: ~30 µs less (core/scripts.READ)
            reply = await call_script(self._wb.redis, self._wb.scripts.read, [places[0].entry], [])
            return [parse_entry(reply[:5], reply[5])]
        pipe = self._wb.redis.pipeline(transaction=False)
        for place in places:
            pipe.hmget(place.entry, list(ENTRY_FIELDS))
            pipe.pttl(place.entry)
        replies = await pipe.execute()
        return [parse_entry(replies[i], replies[i + 1]) for i in range(0, len(replies), 2)]

    def _count(self, answers: Mapping[Any, Answer]) -> dict[Any, Answer]:
        for answer in answers.values():
            self._counter(answer.level, answer.outcome).inc()
        return dict(answers)

    def _event(self, level: str, outcome: str, n: int = 1) -> None:
        self._counter(level, outcome).inc(n)

    def _counter(self, level: str, outcome: str) -> Any:
        """This collection's ``SDK_READS`` child for ``level``/``outcome``, looked up once
        (``labels()`` cost more than the increment; a few dozen pairs at most)."""
        try:
            return self._counters[level, outcome]
        except KeyError:
            child = self._counters[level, outcome] = SDK_READS.labels(self.name, level, outcome)
            return child

    # -- misses ---------------------------------------------------------------

    async def _load(self, misses: list[Any], places: Mapping[Any, Place]) -> dict[Any, Answer]:
        if not self.policy.fill:
            loaded = await self._find(misses)
            return {i: self._from_mongodb(loaded[i], "mongodb") for i in misses}
        by_key = {places[doc_id].entry: doc_id for doc_id in misses}

        async def load(keys: list[str]) -> dict[str, Any]:
            found = await self._load_and_fill([places[by_key[k]] for k in keys])
            return {places[doc_id].entry: answer for doc_id, answer in found.items()}

        futures = self._wb.read_flights.start(list(by_key), load)
        return {doc_id: await wait_shielded(futures[key]) for key, doc_id in by_key.items()}

    async def _load_and_fill(self, places: list[Place]) -> dict[Any, Any]:
        """One flight: take the leases, load what this process holds, wait for the rest."""
        tokens = {place.doc_id: new_token() for place in places}
        try:
            replies = await self._redis(lambda: self._leases(places, tokens, "m"), len(places))
        except CacheUnavailable:
            loaded = await self._find([place.doc_id for place in places])
            return {i: self._from_mongodb(doc, "degraded") for i, doc in loaded.items()}
        except ResponseError:  # refused (at maxmemory): read MongoDB, fill nothing
            self._event("fill", "skip_refused", len(places))
            loaded = await self._find([place.doc_id for place in places])
            return {i: self._from_mongodb(doc, "mongodb") for i, doc in loaded.items()}
        answers: dict[Any, Any] = {}
        mine: list[tuple[Place, str, int]] = []
        waits = []
        for place, reply in zip(places, replies, strict=True):
            if reply.status == "e":
                answers[place.doc_id] = self._from_entry(reply.entry, "redis")
            elif reply.status == "l":
                self._event("lease", "acquired")
                mine.append((place, tokens[place.doc_id], reply.now_ms))
            else:
                self._event("lease", "wait")
                waits.append(self._wait_then_load(place))
        jobs: list[Any] = [self._fill(mine)] if mine else []
        results = await asyncio.gather(*jobs, *waits, return_exceptions=True)
        if mine:
            own = results.pop(0)
            if isinstance(own, BaseException):
                answers.update({place.doc_id: own for place, _, _ in mine})
            else:
                answers.update(own)
        waiting = [p for p, r in zip(places, replies, strict=True) if r.status == "w"]
        answers.update({p.doc_id: r for p, r in zip(waiting, results, strict=True)})
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
        return answers

    async def _leases(
        self, places: Sequence[Place], tokens: Mapping[Any, str], mode: str
    ) -> list[ScriptReply]:
        lease_ms = int(self.policy.lock_timeout * 1000)
        calls = [
            (self._wb.scripts.lease, [p.entry, p.lease], [tokens[p.doc_id], lease_ms, mode])
            for p in places
        ]
        return [parse_script_reply(reply) for reply in await self._scripts(calls)]

    async def _scripts(
        self, calls: Sequence[tuple[AsyncScript, list[str], list[Any]]]
    ) -> list[Any]:
        """Run script calls in one round trip, safe against an emptied script cache
        (``core.script_calls.run_scripts``: EVALSHA, then EVAL for any NOSCRIPT)."""
        replies, _ = await run_scripts(
            self._wb.redis, [ScriptCall(script, keys, args) for script, keys, args in calls]
        )
        return replies

    async def _fill(
        self, leases: list[tuple[Place, str, int]], watched: bool = False
    ) -> dict[Any, Answer]:
        """Load the documents this process holds leases for, and fill their entries.

        ``watched``: the tokens are another holder's leases (a wait past
        ``lock_timeout``), which the fill needs still there and never releases.
        """
        places = [place for place, _, _ in leases]
        began = time.monotonic()
        try:
            loaded = await self._find([place.doc_id for place in places])
        except BaseException:
            if not watched:
                with anyio.CancelScope(shield=True):
                    await self._release(leases)
            raise
        load_ms = self._took(began)
        try:
            replies = await self._redis(
                lambda: self._fills(leases, loaded, load_ms, watched), len(leases)
            )
        except (CacheUnavailable, ResponseError):  # unavailable, or refused at maxmemory
            self._event("fill", "skip_refused", len(places))
            return {p.doc_id: self._from_mongodb(loaded[p.doc_id], "mongodb") for p in places}
        answers: dict[Any, Answer] = {}
        for place, reply in zip(places, replies, strict=True):
            answers[place.doc_id] = self._settle(loaded[place.doc_id], reply)
        return answers

    async def _fills(
        self,
        leases: Sequence[tuple[Place, str, int]],
        loaded: Mapping[Any, Loaded],
        load_ms: int,
        watched: bool,
    ) -> list[ScriptReply | None]:
        calls = [
            self._fill_call(place, token, started, loaded[place.doc_id], load_ms, watched)
            for place, token, started in leases
        ]
        return [_parse_fill(reply) for reply in await self._scripts(calls)]

    def _fill_call(
        self, place: Place, token: str, started: int, got: Loaded, load_ms: int, watched: bool
    ) -> tuple[AsyncScript, list[str], list[Any]]:
        scripts = self._wb.scripts
        if got.doc is None:
            ttl_ms = negative_ttl_ms(self.policy)
            if ttl_ms <= 0:  # negative caching off: nothing to store, but wake the waiters
                mine = "" if watched else token  # "" releases nothing: not ours
                return scripts.release, [place.lease], [mine, place.channel]
            kind, body = "a", b""
        else:
            ttl_ms, kind, body = entry_ttl_ms(self.policy, self._rand()), "d", got.body or b""
        max_age_ms = int(self.policy.lock_timeout * 1000)
        args = [token, started, max_age_ms, str(got.version), kind, body, ttl_ms, load_ms]
        args += [place.channel, "watch" if watched else "own"]
        return scripts.fill, [place.entry, place.lease, place.marker, place.flush_marker], args

    def _settle(self, got: Loaded, reply: ScriptReply | None) -> Answer:
        """The answer after a fill: the entry if it is newer (or dirty), else what was loaded."""
        if reply is None:  # released without a fill (negative caching off)
            return self._from_mongodb(got, "mongodb")
        self._event("fill", reply.status if reply.status in _DONE else f"skip_{reply.status}")
        entry = reply.entry
        doc = got.doc
        version: Version | None = got.version
        if entry.version is not None and (not entry.clean or entry.version >= got.version):
            doc = self._from_entry(entry, "mongodb").doc
            version = entry.version
        outcome = "miss" if doc is None else "hit"
        return Answer(doc, "mongodb", outcome, reply.status == "filled", version)

    async def _release(self, leases: Sequence[tuple[Place, str, int]]) -> None:
        calls = [
            (self._wb.scripts.release, [place.lease], [token, place.channel])
            for place, token, _ in leases
        ]

        async def release() -> None:
            await self._scripts(calls)

        with contextlib.suppress(CacheUnavailable):  # else the leases expire by themselves
            await self._redis(release, len(calls))

    async def _wait_then_load(self, place: Place) -> Answer:
        """Wait for another process's fill (by announcement, not polling), then read it."""
        token = new_token()
        try:
            async with subscribed(
                self._wb.redis, place.channel, self.policy.redis_timeout
            ) as announced:
                reply = await self._wait(place, token, announced)
        except Exception as exc:
            expected = (CacheUnavailable, ResponseError, *UNREACHABLE)
            if not (isinstance(exc, expected) or is_torn_connection(exc)):
                raise
            loaded = await self._find([place.doc_id])
            level = "mongodb" if isinstance(exc, ResponseError) else "degraded"
            return self._from_mongodb(loaded[place.doc_id], level)
        if reply.status == "e":
            self._event("lease", "woken")
            return self._from_entry(reply.entry, "redis", "waited")
        if reply.status == "l":
            self._event("lease", "acquired")
            return (await self._fill([(place, token, reply.now_ms)]))[place.doc_id]
        # Past lock_timeout with the lease still held elsewhere: load, and fill only if that
        # lease is still there at the end (no write came meanwhile: writes delete it).
        self._event("lease", "timeout")
        return (await self._fill([(place, reply.holder, reply.now_ms)], watched=True))[place.doc_id]

    async def _wait(self, place: Place, token: str, announced: NextAnnouncement) -> ScriptReply:
        """Look at the entry after subscribing and after each announcement, until it is
        there, the lease is ours, or ``lock_timeout`` has passed (the last look is then
        the freshest: its Redis time starts the fence's clock for a load of our own)."""
        deadline = anyio.current_time() + self.policy.lock_timeout
        tokens = {place.doc_id: token}
        while True:
            replies: list[ScriptReply] = await self._redis(
                lambda: self._leases([place], tokens, "m")
            )
            reply = replies[0]
            left = deadline - anyio.current_time()
            if reply.status != "w" or left <= 0:
                return reply
            await announced(left)

    # -- MongoDB --------------------------------------------------------------

    async def _find(self, ids: list[Any]) -> dict[Any, Loaded]:
        """What MongoDB holds for ``ids``: one ``find`` for all of them."""
        coll = self._wb.mongo_collection(self.name)
        return await load_documents(coll, ids, self._wb.codec_options, self.policy.mongo_timeout)

    async def _degraded(self, ids: list[Any]) -> dict[Any, Answer]:
        loaded = await self._find(ids)
        return {doc_id: self._from_mongodb(loaded[doc_id], "degraded") for doc_id in ids}

    def _from_entry(self, entry: CachedEntry, level: str, outcome: str | None = None) -> Answer:
        v = entry.version
        if entry.tombstone:
            return Answer(None, level, outcome or "deleted", version=v)
        if entry.reads_absent:
            return Answer(None, level, outcome or "negative_hit", version=v)
        assert entry.body is not None
        doc = decode_document(entry.body, self._wb.codec_options)
        return Answer(doc, level, outcome or "hit", version=v)

    def _from_mongodb(self, got: Loaded, level: str) -> Answer:
        return Answer(got.doc, level, "miss" if got.doc is None else "hit", version=got.version)

    def _took(self, began: float) -> int:
        seconds = time.monotonic() - began
        self._load_seconds = 0.8 * self._load_seconds + 0.2 * seconds
        return max(1, int(seconds * 1000))

    # -- early refresh (XFetch) -----------------------------------------------

    def _maybe_refresh(self, place: Place, entry: CachedEntry) -> None:
        beta = self.policy.early_refresh
        if beta <= 0 or not self.policy.fill or not entry.clean or entry.reads_absent:
            return
        if refresh_due(
            beta=beta,
            load_ms=entry.load_ms,
            fallback_delta=self._load_seconds,
            ttl_ms=entry.ttl_ms,
            rand=self._rand,
        ):
            self._wb.read_flights.refresh_once(place.entry, lambda: self._refresh(place))

    async def _refresh(self, place: Place) -> None:
        """Reload and refill one entry in the background; a failure leaves the entry serving."""
        token = new_token()
        try:
            reply = (await self._redis(lambda: self._leases([place], {place.doc_id: token}, "r")))[
                0
            ]
            if reply.status != "l":
                return  # another process is refreshing or loading it
            self._event("early_refresh", "started")
            await self._fill([(place, token, reply.now_ms)])
            self._event("early_refresh", "done")
        except Exception:
            self._event("early_refresh", "failed")


_DONE = ("filled", "renewed")


def _parse_fill(reply: Any) -> ScriptReply | None:
    return None if isinstance(reply, int) else parse_script_reply(reply)


def checked_ids(ids: Any) -> list[Any]:
    """The ids of a ``get_many``/``warm`` call, each checked, duplicates dropped, in order.

    Raises ``InvalidInput`` for something other than an iterable of ids (a
    single ``str`` is one id, not its characters: refused), and
    ``UnsupportedIdType`` for an id of a type documents cannot have (checked
    before hashing, so an unhashable id is refused the same way).
    """
    if isinstance(ids, str | bytes | Mapping) or not isinstance(ids, Iterable):
        raise InvalidInput(f"expected an iterable of document ids, not {type(ids).__name__}")
    listed = list(ids)
    for doc_id in listed:
        encode_id(doc_id)
    return list(dict.fromkeys(listed))
