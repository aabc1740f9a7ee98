"""Re-applying records outside the worker: replay and dead-letter re-drives share this.

Records go through the same coalescing and version-guarded writes as the
worker, so re-applying never rolls a document back and doing it twice changes
nothing. Before writing, the stored versions are read so each record can be
reported as an insert, update, delete or skip; a dry run stops there.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from writebehind.core.backoff import retry
from writebehind.core.codec import META_FIELD
from writebehind.core.errors import RetriesExhausted
from writebehind.core.version import Version
from writebehind.sink.bulk import Fence, MongoSink
from writebehind.sink.classify import ErrorInfo, Failure, is_transient
from writebehind.sink.guards import Pending
from writebehind.sink.plan import DocumentWrites, coalesce
from writebehind.sink.settle import settle

log = structlog.get_logger("writebehind.sink.reapply")


class Outcome(enum.Enum):
    INSERTED = "inserted"
    UPDATED = "updated"
    DELETED = "deleted"
    SKIPPED_NEWER = "skipped_newer"
    """MongoDB already holds this version or a newer one."""
    COALESCED = "coalesced"
    """A newer record of the same document in the same batch covers it."""
    FAILED = "failed"
    """MongoDB refused it for good (the caller dead-letters it)."""


@dataclass(frozen=True, slots=True)
class Result:
    pending: Pending
    outcome: Outcome
    error: ErrorInfo | None = None


@dataclass(slots=True)
class OutcomeCounts:
    """Counts per collection and outcome, with a few example ids of each."""

    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    max_examples: int = 3

    def add(self, results: Sequence[Result]) -> None:
        for r in results:
            collection = r.pending.record.collection
            self.counts[collection][r.outcome.value] += 1
            shown = self.examples[collection][r.outcome.value]
            if len(shown) < self.max_examples:
                shown.append(repr(r.pending.doc_id))

    def total(self, outcome: Outcome) -> int:
        return sum(c[outcome.value] for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "collections": {
                name: {
                    "counts": dict(counts),
                    "examples": {k: list(v) for k, v in self.examples[name].items()},
                }
                for name, counts in sorted(self.counts.items())
            },
            "totals": {o.value: self.total(o) for o in Outcome},
        }


def predict(pending: Pending, stored_version: Version | None, stored_exists: bool) -> Outcome:
    """What the guarded write of ``pending`` will do to what MongoDB holds (pure)."""
    if stored_version is not None and stored_version >= pending.version:
        return Outcome.SKIPPED_NEWER
    if pending.record.op == "del":
        return Outcome.DELETED
    return Outcome.UPDATED if stored_exists else Outcome.INSERTED


class Reapplier:
    """Coalesce, predict, and (unless ``dry_run``) write records with retries.

    Transient failures (``classify.is_transient``) are retried with backoff
    until ``retry_for`` seconds have passed, then ``RetriesExhausted`` (or the
    driver's transient error) is raised; any other exception is raised at
    once. Records MongoDB refuses for good come back as ``FAILED``.
    """

    def __init__(self, sink: MongoSink, *, dry_run: bool = False, retry_for: float = 300.0):
        self.sink = sink
        self.dry_run = dry_run
        self.retry_for = retry_for
        self.on_retry: Callable[[str, int, float], None] | None = None
        """Called before each retry with (error, records waiting, seconds failing so far);
        replaces the ``reapply_retry`` log line (the CLI shows a progress line instead)."""

    async def apply(self, pendings: Sequence[Pending], fence: Fence | None = None) -> list[Result]:
        """One ``Result`` per record: each document's newest is written, older ones coalesced.

        ``fence`` is the sink's (``MongoSink.write``): the check, before each write, that
        the Redis primary the records were read from still holds them.

        Where MongoDB refuses a document's newest record for good, it comes
        back ``FAILED`` and the next newest gets its turn, by the worker's
        rule (``sink.settle``), so the outcome does not depend on which
        records were re-applied together.

        Raises:
            RetriesExhausted: MongoDB kept failing transiently for ``retry_for`` seconds.
            PrimaryChanged: from ``fence``: the records not yet written were not written.
            pymongo.errors.PyMongoError: any other MongoDB failure, at once.
        """
        results: list[Result] = []
        groups = coalesce(pendings)
        while groups:
            written = await self._apply_newest(groups, fence)
            settled = settle(
                groups, [r.error if r.outcome is Outcome.FAILED else None for r in written]
            )
            results += [
                Result(p, Outcome.COALESCED) for g in settled.persisted for p in g.records[:-1]
            ]
            results += written
            groups = settled.retry
        return results

    async def _apply_newest(
        self, groups: Sequence[DocumentWrites], fence: Fence | None
    ) -> list[Result]:
        """Predict and write each group's newest record; one result per group, in order."""
        by_collection: dict[str, list[int]] = defaultdict(list)
        for index, group in enumerate(groups):
            by_collection[group.collection].append(index)
        out: list[Result | None] = [None] * len(groups)
        for name, indexes in by_collection.items():
            applied = await self._apply_collection(name, [groups[i].newest for i in indexes], fence)
            for index, result in zip(indexes, applied, strict=True):
                out[index] = result
        return [r for r in out if r is not None]

    async def _stored_versions(self, name: str, items: Sequence[Pending]) -> dict[Any, Any]:
        cursor = self.sink.collection(name).find(
            {"_id": {"$in": [p.doc_id for p in items]}}, {META_FIELD: 1}
        )
        return {doc["_id"]: doc.get(META_FIELD) async for doc in cursor}

    async def _apply_collection(
        self, name: str, items: list[Pending], fence: Fence | None
    ) -> list[Result]:
        stored = await self._with_retries(self._stored_versions, name, items)
        predicted: list[Outcome] = []
        for p in items:
            exists = p.doc_id in stored
            meta = stored.get(p.doc_id)
            version = (
                Version.from_pair(meta["v"]) if isinstance(meta, dict) and "v" in meta else None
            )
            predicted.append(predict(p, version, exists and not _is_tombstone(meta)))
        if self.dry_run:
            return [Result(p, o) for p, o in zip(items, predicted, strict=True)]

        async def write(name: str, items: list[Pending]) -> list[ErrorInfo | None]:
            return await self._write_until_settled(name, items, fence)

        errors = await self._with_retries(write, name, items)
        return [
            Result(p, Outcome.FAILED, e) if e is not None else Result(p, o)
            for p, o, e in zip(items, predicted, errors, strict=True)
        ]

    async def _write_until_settled(
        self, name: str, items: list[Pending], fence: Fence | None
    ) -> list[ErrorInfo | None]:
        results = await self.sink.write(name, items, fence)
        transient = [r for r in results if r is not None and r.kind is not Failure.PERMANENT]
        if transient:
            raise _Transient(transient[0])
        return results

    async def _with_retries(self, fn: Any, name: str, items: Sequence[Pending]) -> Any:
        started = anyio.current_time()

        def report(exc: BaseException, delay: float) -> None:
            error = exc.info.message if isinstance(exc, _Transient) else str(exc)
            if self.on_retry is not None:
                self.on_retry(error, len(items), anyio.current_time() - started)
            else:
                log.warning("reapply_retry", error=error[:300], delay=round(delay, 3))

        try:
            return await retry(
                lambda: fn(name, items),
                transient=_worth_retrying,
                give_up_after=self.retry_for,
                on_retry=report,
            )
        except Exception as exc:
            if not _worth_retrying(exc):
                raise  # not an outage: raised at once, never retried
            # Retried for the whole budget: a MongoDB refusal, or a driver error such as
            # ServerSelectionTimeoutError raised before any write was sent.
            message = exc.info.message if isinstance(exc, _Transient) else str(exc)
            raise RetriesExhausted(
                f"MongoDB kept failing for {self.retry_for}s: {message}"
            ) from None


class _Transient(Exception):
    """A bulk write some of whose records failed transiently: the whole call is retried."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, _Transient) or is_transient(exc)


def _is_tombstone(meta: Any) -> bool:
    return isinstance(meta, dict) and bool(meta.get("deleted"))
