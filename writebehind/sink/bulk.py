"""Applies guarded writes with one unordered ``bulk_write`` per collection, per batch."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import structlog
from bson.codec_options import CodecOptions
from pymongo.errors import BulkWriteError
from pymongo.write_concern import WriteConcern

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS
from writebehind.core.errors import PrimaryChanged
from writebehind.core.floor_store import FloorKeeper
from writebehind.core.keys import encode_id
from writebehind.core.shard_key import stored_conflict
from writebehind.sink.classify import (
    DUPLICATE_KEY,
    ErrorInfo,
    Failure,
    classify_exception,
    classify_write_error,
)
from writebehind.sink.guards import PURGE_FIELD, Pending, guarded_write

log = structlog.get_logger("writebehind.sink")

T = TypeVar("T")

Fence = Callable[[], Awaitable[None]]
"""Called after the floor covers a batch and before it is written: raises ``PrimaryChanged``
when the Redis primary the versions came from is gone (``core.witness.confirm``)."""


async def _cancel_once(call: Awaitable[T]) -> T:
    """Await a PyMongo call in its own task; if we are cancelled, cancel it exactly once.

    PyMongo's async server selection waits on a condition via ``asyncio.wait_for``.
    anyio re-cancels a task on every loop turn until it leaves the cancel scope,
    which breaks that wait's lock re-acquisition and leaks the topology lock: every
    later operation, and ``close()``, then hang (a drain deadline or a second signal
    while MongoDB is down left the worker running for ever). One plain cancel is safe.
    """
    task = asyncio.ensure_future(call)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        raise


class MongoSink:
    """Writes ``Pending`` records to MongoDB and says, per record, what happened.

    Each result is ``None`` (applied, or already newer in MongoDB: either way
    done) or an ``ErrorInfo`` saying whether to retry or dead-letter.

    Before a batch, the version floor of deployment ``prefix`` is raised above
    it (``core.floor``), with the data's write concern, so that a new Redis
    primary can be seeded above every version MongoDB holds; then the caller's
    fence (``core.witness``) checks that the batch's primary was not replaced
    meanwhile by one seeded below it.
    """

    def __init__(
        self,
        database: Any,
        *,
        prefix: str,
        write_concern: WriteConcern | None = None,
        tombstone_grace: dt.timedelta = dt.timedelta(days=7),
        hard_deletes: bool = False,
    ) -> None:
        self.database = database
        self.write_concern = write_concern or WriteConcern(w="majority", j=True)
        self.floor = FloorKeeper(database, prefix, self.write_concern)
        self.tombstone_grace = tombstone_grace
        self.hard_deletes = hard_deletes
        self.on_bulk_write: Callable[[float], None] | None = None
        """Called with each bulk_write's duration in seconds (metrics)."""
        self._indexed: set[str] = set()
        self.codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS
        """The deployment's codec options (``core.deployment.reader_codec``): documents are
        stored as the producers' own MongoDB handle would store them."""

    def collection(self, name: str) -> Any:
        return self.database.get_collection(
            name, codec_options=self.codec_options, write_concern=self.write_concern
        )

    async def ensure_tombstone_index(self, name: str) -> None:
        """The TTL index that removes tombstones; created once per collection per process."""
        if self.hard_deletes or name in self._indexed:
            return
        try:
            await _cancel_once(
                self.collection(name).create_index(
                    PURGE_FIELD,
                    expireAfterSeconds=0,
                    sparse=True,  # only tombstones have the field: live writes skip the index
                    name="writebehind_tombstone_ttl",
                )
            )
        except Exception as exc:
            log.warning("tombstone_index_failed", collection=name, error=str(exc))
            return
        self._indexed.add(name)

    async def write(
        self, name: str, pendings: Sequence[Pending], fence: Fence | None = None
    ) -> list[ErrorInfo | None]:
        """Write ``pendings`` to collection ``name``; one result per record, in order.

        Never raises for a MongoDB failure: each becomes an ``ErrorInfo``
        (``sink.classify``), transient or permanent; so does a ``fence`` that
        fails for any other reason (Redis not answering). Cancellation propagates.

        Raises:
            PrimaryChanged: from ``fence``, awaited once the floor covers the batch:
                nothing was written.
        """
        if not pendings:
            return []
        try:
            await self.ensure_tombstone_index(name)
        except Exception as exc:
            # MongoDB down before the bulk_write: the same transient failure, to retry.
            info = classify_exception(exc)
            if info.kind is not Failure.TRANSIENT:
                raise
            return [info] * len(pendings)
        try:
            await _cancel_once(self.floor.cover(max(p.version.ms for p in pendings)))
        except Exception as exc:
            # Never write versions the floor does not cover: retried, whatever the error
            # (a refusal to write the floor is a misconfiguration to fix, not a bad record).
            info = classify_exception(exc)
            message = f"raising the version floor failed: {info.message}"
            return [ErrorInfo(Failure.TRANSIENT, info.code, message)] * len(pendings)
        if fence is not None:
            try:
                await fence()
            except PrimaryChanged:
                raise
            except Exception as exc:
                # Unchecked, never written: retried until Redis answers the check.
                message = f"checking the Redis primary still holds the batch failed: {exc}"
                return [ErrorInfo(Failure.TRANSIENT, None, message)] * len(pendings)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        models = [
            guarded_write(
                p, now=now, tombstone_grace=self.tombstone_grace, hard_deletes=self.hard_deletes
            )
            for p in pendings
        ]
        try:
            started = time.perf_counter()
            try:
                await _cancel_once(self.collection(name).bulk_write(models, ordered=False))
            finally:
                if self.on_bulk_write is not None:
                    self.on_bulk_write(time.perf_counter() - started)
        except BulkWriteError as exc:
            results = self._per_operation(dict(exc.details), len(pendings))
            return await self._shard_conflicts(name, pendings, results)
        except Exception as exc:
            info = classify_exception(exc)
            if info.kind is not Failure.SPLIT:
                return [info] * len(pendings)
            if len(pendings) == 1:
                return [ErrorInfo(Failure.PERMANENT, info.code, info.message)]
            # The driver refused the batch before sending it and names no
            # operation: halve it until the offender stands alone.
            middle = len(pendings) // 2
            return await self.write(name, pendings[:middle], fence) + await self.write(
                name, pendings[middle:], fence
            )
        return [None] * len(pendings)

    async def _shard_conflicts(
        self, name: str, pendings: Sequence[Pending], results: list[ErrorInfo | None]
    ) -> list[ErrorInfo | None]:
        """Duplicate ``_id`` errors of records with shard key values that retrying cannot cure.

        Such an error is usually two upserts racing (transient), but when the
        stored document has other shard key values, the record tries to change
        its shard key: permanent, so it is dead-lettered instead of holding its
        partition for ever. One ``find`` by ``_id``; if it fails they stay transient.
        """
        suspects = [
            i
            for i, (p, r) in enumerate(zip(pendings, results, strict=True))
            if p.shard and r is not None and r.kind is Failure.TRANSIENT and r.code == DUPLICATE_KEY
        ]
        if not suspects:
            return results
        try:
            cursor = self.collection(name).find(
                {"_id": {"$in": [pendings[i].doc_id for i in suspects]}}
            )
            stored: dict[str, list[dict[str, Any]]] = {}
            async for doc in cursor:
                stored.setdefault(encode_id(doc["_id"]), []).append(doc)
        except Exception as exc:
            log.warning("shard_conflict_check_failed", collection=name, error=str(exc))
            return results
        for i in suspects:
            for doc in stored.get(encode_id(pendings[i].doc_id), []):
                reason = stored_conflict(pendings[i].shard, doc)
                if reason is not None:
                    results[i] = ErrorInfo(Failure.PERMANENT, DUPLICATE_KEY, reason)
                    break
        return results

    @staticmethod
    def _per_operation(details: dict[str, Any], count: int) -> list[ErrorInfo | None]:
        results: list[ErrorInfo | None] = [None] * count
        concern_errors = details.get("writeConcernErrors") or []
        if concern_errors:
            # Applied but not confirmed durable: retry all (the guard makes it safe).
            first = concern_errors[0]
            info = ErrorInfo(Failure.TRANSIENT, first.get("code"), str(first.get("errmsg", "")))
            results = [info] * count
        for error in details.get("writeErrors") or []:
            results[int(error["index"])] = classify_write_error(error)
        return results
