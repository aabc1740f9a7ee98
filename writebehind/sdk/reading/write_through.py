"""Write-through: a write returns only once MongoDB holds its version, journaled.

The write is made exactly as in write-behind (cache entry + change record in
one script, so the workers apply it too and order is kept), then this process
writes the same version to MongoDB itself with the same version-guarded model
the workers use, so a write-through and a write-behind write to one document
never apply out of order: whichever lands second, the newer version wins. It
does not wait for a worker's linger. The benchmarks' baseline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core.backoff import Backoff, retry
from writebehind.core.codec import META_FIELD, decode_document
from writebehind.core.errors import (
    ConfigurationError,
    NotReplicated,
    PersistTimeout,
    PrimaryChanged,
    WriteManyError,
)
from writebehind.core.floor_store import FloorKeeper
from writebehind.core.guarded import DEFAULT_TOMBSTONE_GRACE, guarded_replace, snapshot, tombstone
from writebehind.core.mongo_errors import bulk_write_is_transient
from writebehind.core.shard_key import ShardKey
from writebehind.core.version import Version
from writebehind.core.witness import Witness, confirm
from writebehind.sdk.collection import Collection, _document, _pairs, _Prepared
from writebehind.sdk.reading.policy import ReadPolicy

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind

RETRY_BASE, RETRY_CAP = 0.02, 0.5
"""Seconds between attempts to write MongoDB after a transient failure: from
about ``RETRY_BASE`` doubling up to ``RETRY_CAP`` (``core.backoff``), until
``write_through_timeout``."""


class WriteThroughCollection(Collection):
    """A ``Collection`` whose writes return once MongoDB holds them (``mode="write_through"``).

    ``set``/``patch``/``modify``/``delete``/``set_many`` raise ``PersistTimeout``
    when MongoDB has not taken the write within ``write_through_timeout``
    seconds, transient failures (lost connections, not-primary, write-concern
    errors: ``core.mongo_errors``) being retried with backoff until then; and
    at once when MongoDB refuses it (a validator, a unique index). Either way
    the write was made in Redis all the same, stays queued, and the workers
    still apply it (or dead-letter it, if MongoDB refuses it for good).
    Deletes are written as tombstones purged after 7 days (the worker's default
    ``--tombstone-grace``), whatever the workers' ``--hard-deletes``. Like the
    workers, it raises the version floor (``core.floor``) before writing, then
    checks that the Redis primary still holds the write's record
    (``core.witness``); if it does not (the primary was replaced by one that
    never got it), ``PrimaryChanged`` is raised and MongoDB is not written:
    the write was lost with the old primary (unless MongoDB holds its version
    already: a worker persisted it and the record was trimmed since).
    """

    def __init__(
        self,
        wb: WriteBehind,
        name: str,
        reads: ReadPolicy | None,
        timeout: float,
        shard_key: ShardKey | None = None,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError(f"write_through_timeout must be > 0 seconds: {timeout!r}")
        super().__init__(wb, name, reads=reads, shard_key=shard_key)
        self.write_through_timeout = float(timeout)
        # Raised before each write, as the workers do (core/floor.py).
        self._floor = FloorKeeper(wb.mongo, wb.keys.prefix, self._journaled())

    async def _write(self, p: _Prepared, expected: str = "") -> Version | None:
        try:
            version = await super()._write(p, expected)
        except NotReplicated as exc:
            await self._persist([(p, v) for v in exc.versions])
            raise
        if version is not None:
            await self._persist([(p, version)])
        return version

    async def set_many(self, items: Iterable[tuple[Any, Mapping[str, Any]]]) -> list[Version]:
        """As ``Collection.set_many``, returning once MongoDB holds every write.

        Raises: as ``Collection.set_many``; ``PersistTimeout``, ``PrimaryChanged`` (see the
        class).
        """
        with self._wb.calling():
            # The items checked as the parent checks them: a None document is refused,
            # never prepared as a delete, and a bad items argument raises InvalidInput.
            pairs = [(doc_id, _document(doc)) for doc_id, doc in _pairs(items)]
            prepared = [self._prepare(doc_id, doc) for doc_id, doc in pairs]
        try:
            versions = await super().set_many(pairs)
        except WriteManyError as exc:
            made = zip(prepared, exc.results, strict=True)
            await self._persist([(p, v) for p, v in made if isinstance(v, Version)])
            raise
        except NotReplicated as exc:
            await self._persist(list(zip(prepared, exc.versions, strict=True)))
            raise
        await self._persist(list(zip(prepared, versions, strict=True)))
        return versions

    async def _persist(self, writes: Sequence[tuple[_Prepared, Version]]) -> None:
        if not writes:
            return
        now = dt.datetime.now(dt.UTC)
        models = []
        for p, version in writes:
            shard = p.shard or {}
            if p.op == "del":
                new = tombstone(p.doc_id, version, now + DEFAULT_TOMBSTONE_GRACE, shard)
            else:
                new = snapshot(decode_document(p.body, self._wb.codec_options), version)
            models.append(guarded_replace(p.doc_id, version, new, shard))
        coll = self._mongo().with_options(write_concern=self._journaled())
        top = max(version.ms for _, version in writes)
        # Per partition, the record of its newest write: the primary must still hold it.
        newest: dict[str, tuple[_Prepared, Version]] = {}
        for p, version in writes:
            held = newest.get(p.stream)
            if held is None or version > held[1]:
                newest[p.stream] = (p, version)
        witnesses = [
            Witness(stream, str(version), {b"k": p.entry.encode()})
            for stream, (p, version) in sorted(newest.items())
        ]

        async def attempt() -> None:
            await self._floor.cover(top)
            await confirm(self._wb.redis, witnesses)
            await coll.bulk_write(models, ordered=False)

        def transient(exc: BaseException) -> bool:
            return bulk_write_is_transient(exc) or isinstance(
                exc, RedisConnectionError | RedisTimeoutError
            )

        failures: list[BaseException] = []
        try:
            with anyio.fail_after(self.write_through_timeout):
                try:
                    await retry(
                        attempt,
                        transient=transient,
                        backoff=Backoff(base=RETRY_BASE, cap=RETRY_CAP),
                        on_retry=lambda exc, _delay: failures.append(exc),
                    )
                except PrimaryChanged:
                    # A record a worker persisted, acked and trimmed (retention 0) is
                    # missing too: then MongoDB holds the version already.
                    if not await _in_mongodb(coll, writes):
                        raise
        except (TimeoutError, PyMongoError) as exc:
            raise PersistTimeout(self._not_taken(writes, exc, failures)) from exc

    def _not_taken(
        self,
        writes: Sequence[tuple[_Prepared, Version]],
        exc: BaseException,
        failures: Sequence[BaseException],
    ) -> str:
        """``PersistTimeout``'s message: which write, why, and that it stays queued."""
        first = writes[0]
        what = f"{self.name}/{first[0].doc_id!r} at version {first[1]}"
        if len(writes) > 1:
            what += f" and {len(writes) - 1} more"
        if isinstance(exc, PyMongoError):  # refused, not transient: no use waiting
            why = f"MongoDB refused {what} ({type(exc).__name__}: {exc})"
            after = "the workers retry it, and dead-letter it if MongoDB refuses it for good."
        else:
            why = f"MongoDB did not take {what} within {self.write_through_timeout:g} s"
            if failures:
                last, n = failures[-1], len(failures)
                why += f" ({n} transient failure{'s' if n != 1 else ''} retried; last: "
                why += f"{type(last).__name__}: {last})"
            after = "the workers still apply it."
        return f"{why}. The write is made in Redis and stays queued: {after}"

    def _journaled(self) -> WriteConcern:
        """The database's write concern, journaled (``j: true``): acknowledged means durable."""
        base = getattr(self._wb.mongo, "write_concern", None)
        document = dict(base.document) if base is not None else {}
        document["j"] = True
        return WriteConcern(**document)


async def _in_mongodb(coll: Any, writes: Sequence[tuple[_Prepared, Version]]) -> bool:
    """Whether MongoDB holds each write's version or a newer one (``False`` if it cannot say)."""
    try:
        cursor = coll.find({"_id": {"$in": [p.doc_id for p, _ in writes]}}, {META_FIELD: 1})
        stored = {doc["_id"]: doc.get(META_FIELD) async for doc in cursor}
    except PyMongoError:
        return False
    for p, version in writes:
        meta = stored.get(p.doc_id)
        if not (isinstance(meta, dict) and "v" in meta and Version.from_pair(meta["v"]) >= version):
            return False
    return True
