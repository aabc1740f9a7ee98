"""The invalidator daemon: follows MongoDB change streams and evicts the cache entries
of documents written to MongoDB directly (a migration, an admin tool, another service).

One per deployment is enough (more are harmless: every step is idempotent). It
watches the database (or the collections named), and for each change reads
the document's cache entry, asks ``decide`` whether the entry is wrong, and
if so runs the EVICT script: the clean entry goes, an eviction marker fences
off fills that loaded before the change, and a record on the partition's
invalidation stream reaches every near cache. Its resume token is kept in
Redis after each change it handled, so a restart continues where it stopped
(at least once: a change may be handled twice, never skipped). When the token
is no longer usable (the oplog moved past it), it empties the clean entries
of the watched collections (first setting each partition's flush marker, which
refuses the fills already loading: they may have read a document before a
change it never saw), says so (a log line and
``writebehind_invalidator_resyncs_total{mode="empty"}``), and starts afresh.

Changes and documents are decoded under the deployment's codec options as
Redis records them (``core.deployment``), whatever the database handle's: with
a legacy UUID representation, a UUID ``_id`` read under the standard one would
be a ``Binary`` naming no cache entry. Until a producer has recorded them, the
change stream hands over raw BSON and each change is decoded once they are
known (the defaults before).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import bson
import structlog
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from prometheus_client import CollectorRegistry, Counter, Gauge
from pymongo.errors import OperationFailure
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from writebehind.core.backoff import Backoff, retry
from writebehind.core.codec import DEFAULT_CODEC_OPTIONS
from writebehind.core.deployment import recorded_codec
from writebehind.core.errors import UnsupportedIdType
from writebehind.core.floor import FLOOR_COLLECTION
from writebehind.core.keys import KeySpace, encode_id
from writebehind.core.redis_client import REFUSED
from writebehind.core.replies import as_text, is_transient_reply
from writebehind.core.replies import is_transient as redis_transient
from writebehind.core.script_calls import call_script
from writebehind.core.scripts import INVALIDATIONS_MAX_LEN
from writebehind.core.scripts_read import EVICT, FLUSH_CLEAN, FLUSH_MARK
from writebehind.sdk.reading.entry import ENTRY_FIELDS, parse_entry
from writebehind.sink.classify import is_transient as mongo_transient
from writebehind.tools.invalidation.decide import decide, foreign, stored_version

log = structlog.get_logger("writebehind.invalidator")

TOKEN_LOST_CODES = frozenset({9, 260, 280, 286})
"""Codes of a resume token that cannot be used: FailedToParse (SecantusDB), InvalidResumeToken,
ChangeStreamFatalError, ChangeStreamHistoryLost (MongoDB docs, "Resume a Change Stream")."""

DOCUMENT_CHANGES = frozenset({"insert", "update", "replace", "delete"})
COLLECTION_GONE = frozenset({"drop", "rename"})
FLUSH_BATCH = 500


class InvalidatorMetrics:
    """The daemon's own metrics, in its own registry (served by ``--metrics-address``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.changes = Counter(
            "writebehind_invalidator_changes",
            "MongoDB changes handled, by collection and outcome: evicted (a clean entry was "
            "deleted), absent (no entry: marker and near-cache record only), dirty (a pending "
            "write is newer: left alone), same (the entry already holds what MongoDB holds).",
            ["collection", "outcome"],
            registry=registry,
        )
        self.lag = Gauge(
            "writebehind_invalidator_lag_seconds",
            "Seconds between a change's time in MongoDB (wallTime, else clusterTime) and "
            "its handling by the invalidator; 0 once the change stream has nothing new.",
            registry=registry,
        )
        self.resyncs = Counter(
            "writebehind_invalidator_resyncs",
            "Change-stream (re)openings by mode: start (no resume token), resume (from the "
            "token in Redis), empty (the token was unusable: the watched collections' clean "
            "entries and near caches were emptied).",
            ["mode"],
            registry=registry,
        )


class Invalidator:
    """``await Invalidator(...).run()`` until cancelled; ``started`` is set once it watches."""

    def __init__(
        self,
        redis: Redis,
        database: Any,
        keys: KeySpace,
        collections: Sequence[str] = (),
        *,
        fence_ttl: float = 60.0,
        stream_max_len: int = INVALIDATIONS_MAX_LEN,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._redis = redis
        self._db = database
        self._keys = keys
        self._collections = list(collections)
        self._fence_ms = max(1, int(fence_ttl * 1000))
        self._max_len = stream_max_len
        self.metrics = InvalidatorMetrics(registry or CollectorRegistry())
        self._evict = redis.register_script(EVICT)
        self._flush = redis.register_script(FLUSH_CLEAN)
        self._mark = redis.register_script(FLUSH_MARK)
        self.token_key = f"{{{keys.prefix}}}:invalidator:{database.name}:token"
        self.started = anyio.Event()
        self._backoff = Backoff(base=0.1, cap=5.0)
        self._recorded: CodecOptions[Any] | None = None

    async def _codec(self) -> CodecOptions[Any]:
        """The recorded codec options; asked again until a producer has recorded them."""
        if self._recorded is None:
            self._recorded = await recorded_codec(self._redis, self._keys)
        return self._recorded or DEFAULT_CODEC_OPTIONS

    async def run(self) -> None:
        """Watch until cancelled; an outage of MongoDB or Redis, or a resume token that
        cannot be used, is waited out on the shared backoff (reset once watching again).

        Raises what waiting cannot fix: a refused password, a deployment without change
        streams, a bug."""
        await retry(
            self._watch, transient=worth_retrying, backoff=self._backoff, on_retry=_retrying
        )

    def _pipeline(self) -> list[dict[str, Any]]:
        if not self._collections:
            return []
        return [{"$match": {"ns.coll": {"$in": self._collections}}}]

    async def _watch(self) -> None:
        raw = await self._redis.get(self.token_key)
        token = (
            bson.decode(raw if isinstance(raw, bytes) else raw.encode("latin-1")) if raw else None
        )
        mode = "resume" if token else "start"
        # Raw events: each is decoded in _handle, under the options known by then.
        raw_db = self._db.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
        try:
            stream = await raw_db.watch(self._pipeline(), resume_after=token)
        except OperationFailure as exc:
            if token is None or not _token_lost(exc):
                raise
            stream = await raw_db.watch(self._pipeline())
            mode = "empty"
            # Opened first, so that no change between the flush and the watch is missed.
            emptied = await self._empty()
            log.warning(
                "invalidator_resume_token_lost",
                detail=str(exc.details.get("errmsg") if exc.details else exc),
                emptied_entries=emptied,
            )
            await self._save(stream.resume_token)
        self.metrics.resyncs.labels(mode).inc()
        log.info("invalidator_watching", mode=mode, collections=self._collections or "all")
        self._backoff.reset()
        self.started.set()
        async with stream:
            while True:
                change = await stream.try_next()
                if change is not None:
                    await self._handle(change)
                else:
                    self.metrics.lag.set(0.0)  # caught up: an idle stream is not late
                await self._save(stream.resume_token)

    async def _save(self, token: Mapping[str, Any] | None) -> None:
        if token is not None:
            await self._redis.set(self.token_key, bson.encode(token))

    async def _handle(self, event: RawBSONDocument) -> None:
        codec = await self._codec()
        change: Mapping[str, Any] = bson.decode(event.raw, codec_options=codec)
        db = self._db.with_options(codec_options=codec)
        op = change.get("operationType")
        coll = change.get("ns", {}).get("coll")
        if coll == FLOOR_COLLECTION:
            return  # writebehind's own version floor (core/floor.py): never cached
        if op in COLLECTION_GONE and coll:
            await self._empty_collection(str(coll))
        if op not in DOCUMENT_CHANGES or not coll:
            return
        doc_id = change.get("documentKey", {}).get("_id")
        try:
            encode_id(doc_id)
        except UnsupportedIdType:
            return  # writebehind never caches such a document
        raw = await self._post_image(db, op, str(coll), doc_id, change)
        partition = self._keys.partition_of(str(coll), doc_id)
        entry_key = self._keys.cache(partition, str(coll), doc_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(entry_key, list(ENTRY_FIELDS))
        pipe.pttl(entry_key)
        fields, pttl = await pipe.execute()
        entry = parse_entry(fields, pttl)
        direct = foreign(change)
        decision = decide(raw, entry, codec, direct=direct)
        seen = stored_version(raw)
        behind = bool(entry.clean and entry.version and seen and seen < entry.version)
        if decision == "evict" and behind and not direct:
            # An older state than the entry's (the invalidator is behind the worker): judge
            # by what MongoDB holds now, so that a lagging invalidator evicts no newer entry.
            raw = await db[str(coll)].find_one({"_id": doc_id})
            decision = decide(raw, entry, codec)
        outcome: str = decision
        if decision == "evict":
            reply = await call_script(
                self._redis,
                self._evict,
                [
                    entry_key,
                    self._keys.eviction_marker(partition, str(coll), doc_id),
                    self._keys.invalidations(partition),
                    self._keys.lease_of_entry(partition, entry_key),
                ],
                [coll, encode_id(doc_id), self._fence_ms, self._max_len, _when(change)],
            )
            outcome = as_text(reply[0])
        self.metrics.changes.labels(str(coll), outcome).inc()
        self.metrics.lag.set(max(0.0, time.time() - _seconds(change)))

    async def _post_image(
        self, db: Any, op: str, coll: str, doc_id: Any, change: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """The document after the change: in the event, or read now (an update's event
        carries only the diff; what MongoDB holds now is at least as new)."""
        if op == "delete":
            return None
        full = change.get("fullDocument")
        if full is not None:
            return dict(full)
        found: Mapping[str, Any] | None = await db[coll].find_one({"_id": doc_id})
        return found

    async def _empty(self) -> int:
        names = self._collections or [
            n
            for n in await self._db.list_collection_names()
            if not n.startswith("system.") and n != FLOOR_COLLECTION
        ]
        return sum([await self._empty_collection(name) for name in names])

    async def _empty_collection(self, coll: str) -> int:
        """Delete the clean entries of ``coll`` and empty its near caches, per partition.

        The partition's flush marker is set first (``FLUSH_MARK``): a fill whose load
        began before it is refused, though its entry did not exist to be deleted."""
        deleted = 0
        for partition in range(self._keys.partitions):
            marker = self._keys.flush_marker(partition, coll)
            await call_script(self._redis, self._mark, [marker], [])
            prefix = self._keys.cache(partition, coll, "")[: -len(encode_id(""))]
            pattern = _glob_escape(prefix) + "*"
            batch: list[Any] = []
            inval = self._keys.invalidations(partition)
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= FLUSH_BATCH:
                    deleted += int(await self._flush_batch(inval, coll, batch))
                    batch = []
            deleted += int(await self._flush_batch(inval, coll, batch))
        return deleted

    async def _flush_batch(self, inval: str, coll: str, batch: list[Any]) -> Any:
        return await call_script(self._redis, self._flush, [inval, *batch], [coll, self._max_len])


def worth_retrying(exc: BaseException) -> bool:
    """What the invalidator waits out: MongoDB or Redis unavailable (not a refused password),
    Redis at ``maxmemory`` (EVICT refuses whole until the workers have freed memory), or
    a resume token lost while watching (the next watch empties the clean entries and
    starts afresh). Anything else is raised: waiting cannot fix it."""
    if isinstance(exc, OperationFailure) and _token_lost(exc):
        return True
    if isinstance(exc, REFUSED):
        return False
    return (
        mongo_transient(exc)
        or redis_transient(exc)
        or is_transient_reply(exc)
        or isinstance(exc, OutOfMemoryError)
    )


def _retrying(exc: BaseException, delay: float) -> None:
    log.warning(
        "invalidator_retrying", error=type(exc).__name__, detail=str(exc), delay=round(delay, 3)
    )


def _token_lost(exc: OperationFailure) -> bool:
    return exc.code in TOKEN_LOST_CODES or "resume" in str(exc).lower()


def _seconds(change: Mapping[str, Any]) -> float:
    wall = change.get("wallTime")
    if wall is not None and hasattr(wall, "timestamp"):
        return float(wall.timestamp())
    cluster = change.get("clusterTime")
    return float(getattr(cluster, "time", time.time()))


def _when(change: Mapping[str, Any]) -> str:
    cluster = change.get("clusterTime")
    if cluster is None:
        return ""
    return f"{getattr(cluster, 'time', 0)}.{getattr(cluster, 'inc', 0)}"


_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def _glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)
