"""One collection's write and read operations (the SDK's working surface)."""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio

from writebehind.core.backoff import Backoff
from writebehind.core.codec import (
    decode_document,
    encode_document,
    encode_id_document,
    same_id,
    user_view,
)
from writebehind.core.errors import (
    BacklogFull,
    BacklogRefused,
    IdMismatch,
    InvalidDocument,
    InvalidInput,
    NotReplicated,
    TooManyConflicts,
    WriteBehindError,
    WriteManyError,
)
from writebehind.core.keys import encode_id
from writebehind.core.replies import as_text, is_unseeded
from writebehind.core.script_calls import ScriptCall, call_script, fewest_replicas, run_scripts
from writebehind.core.scripts import ABSENT, map_script_error, parse_write_reply, written_version
from writebehind.core.shard_key import ShardKey, ShardValues, encode_values
from writebehind.core.version import Version
from writebehind.sdk.near.reader import NearReader
from writebehind.sdk.persisted import wait_persisted
from writebehind.sdk.reading.entry import Versioned
from writebehind.sdk.reading.loading import within
from writebehind.sdk.reading.policy import ReadPolicy
from writebehind.sdk.reading.reader import Reader
from writebehind.sdk.seeding import SEED_ROUNDS

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind

Document = dict[str, Any]
Modifier = Callable[[Document | None], Document | Awaitable[Document | None] | None]


class _Prepared(NamedTuple):
    """A checked, encoded write, ready for the write script (a tuple: one per item)."""

    doc_id: Any
    partition: int
    stream: str
    entry: str
    op: str
    body: bytes
    seeded: str
    shard: ShardValues | None = None
    """Shard key values (``core.shard_key``); ``None`` for an unsharded collection."""
    shard_raw: bytes = b""
    """``shard`` as the record's ``sk`` field; ``b""`` for none."""
    lease: str = ""
    """The entry's fill lease, which the write deletes: a fill whose load began
    before the write is then refused (core/scripts.py, WRITE and FILL)."""

    @property
    def script_keys(self) -> list[str]:
        """The write script's KEYS: stream, cache entry, the partition's seeded key, the
        entry's fill lease."""
        return [self.stream, self.entry, self.seeded, self.lease]


@dataclass(frozen=True, slots=True)
class _Current:
    """A document as read for a read-modify-write, with the version to compare against."""

    doc: Document | None
    expected: str


class Collection:
    """Writes go to Redis (cache entry + change record, atomically); reads fall back to MongoDB.

    Errors (``writebehind.errors``): bad input raises an ``InvalidInput`` before
    anything is sent. Driver errors are not wrapped: any method may raise
    ``redis.exceptions.RedisError`` (``ConnectionError`` and ``TimeoutError``
    leave a write's outcome unknown: it may have been made), and those that
    read MongoDB ``pymongo.errors.PyMongoError``.
    """

    def __init__(
        self,
        wb: WriteBehind,
        name: str,
        *,
        reads: ReadPolicy | None = None,
        shard_key: ShardKey | None = None,
    ) -> None:
        self._wb = wb
        self.name = name
        self.shard_key = shard_key
        """The collection's shard key, or ``None`` (docs/scaling.md, "Sharded collections")."""
        self.reads = reads or wb.reads
        self._reader = (NearReader if self.reads.near else Reader)(wb, name, self.reads)

    # -- writing ------------------------------------------------------------

    def _prepare(
        self, doc_id: Any, doc: Mapping[str, Any] | None, shard: ShardValues | None = None
    ) -> _Prepared:
        """``shard``: a sharded collection's values for a delete (a set takes its document's)."""
        keys = self._wb.keys
        if doc is None:
            op, body = "del", encode_id_document(doc_id, self._wb.codec_options)
        else:
            op, body = "set", encode_document(doc_id, doc, self._wb.codec_options)
        shard_raw = b""
        if self.shard_key is not None:
            if shard is None:
                shard = self.shard_key.values(doc or {})
            shard_raw = encode_values(shard, self._wb.codec_options)
        partition, entry = keys.entry_of(self.name, doc_id)
        return _Prepared(
            doc_id,
            partition,
            keys.stream(partition),
            entry,
            op,
            body,
            keys.seeded(partition),
            shard,
            shard_raw,
            keys.lease_of_entry(partition, entry),
        )

    def _entry_key(self, doc_id: Any) -> str:
        return self._wb.keys.entry_of(self.name, doc_id)[1]

    def _args(self, p: _Prepared, expected: str, nonce: str = "") -> list[Any]:
        # One per call (and item): a re-sent call is recognised, not re-applied.
        nonce = nonce or secrets.token_hex(8)
        return [
            p.op,
            self.name,
            p.body,
            expected,
            self._wb.group,
            self._wb.max_backlog,
            nonce,
            p.shard_raw,
        ]

    async def _write(self, p: _Prepared, expected: str = "") -> Version | None:
        """Run the write script; ``None`` means the expected version did not match."""
        await self._wb.ensure_ready()
        # Made at the first refusal (each costs more than a write's checks): the
        # wait for room starts there.
        backoff: Backoff | None = None
        deadline = 0.0
        args = self._args(p, expected)
        seeds = 0
        while True:
            try:
                reply, replicas = await self._wb.redis_guard.call(
                    lambda: self._send(p, args), self._wb.write_timeout, "a write"
                )
            except Exception as exc:
                if is_unseeded(exc) and seeds < SEED_ROUNDS:
                    # A new primary: seed the partition, then the same call (it changed nothing).
                    seeds += 1
                    await self._wb.seeder.seed([p.partition], self.reads.mongo_timeout)
                    continue
                mapped = map_script_error(exc)
                if not isinstance(mapped, BacklogRefused):
                    if mapped is exc:
                        raise
                    raise mapped from exc
                if backoff is None:
                    # Jittered: producers blocked on one full partition must not retry in lockstep.
                    backoff = Backoff(base=0.005, cap=0.5)
                    deadline = anyio.current_time() + self._wb.backlog_wait
                delay = backoff.next_delay()
                if anyio.current_time() + delay > deadline:
                    raise BacklogFull(p.partition, mapped.backlog, self._wb.max_backlog) from None
                await anyio.sleep(delay)
                continue
            if expected:
                outcome = parse_write_reply(reply)
                if not outcome.written:
                    return None
                assert outcome.version is not None
                version = outcome.version.for_document(self.name, p.doc_id, p.op == "del")
            else:
                version = written_version(reply, self.name, p.doc_id, p.op == "del")
            self._reader.wrote(p.doc_id, version)  # before any NotReplicated: it was written
            self._check_replicated([version], replicas)
            return version

    async def _send(self, p: _Prepared, args: list[Any]) -> tuple[Any, int | None]:
        """The write script's reply, and how many replicas confirmed it (``None``: not asked)."""
        wanted = self._wb.wait_replicas
        if not wanted:
            reply = await call_script(self._wb.redis, self._wb.scripts.write, p.script_keys, args)
            return reply, None
        # WAIT covers the writes made on its own connection: one pipeline, one connection.
        replies, waits = await run_scripts(
            self._wb.redis,
            [ScriptCall(self._wb.scripts.write, p.script_keys, args)],
            trailing=self._wait_command(),
        )
        return replies[0], fewest_replicas(waits)

    def _wait_command(self) -> tuple[Any, ...]:
        return ("WAIT", self._wb.wait_replicas, self._wait_ms())

    def _wait_ms(self) -> int:
        return max(1, int(self._wb.wait_timeout * 1000))

    def _check_replicated(self, versions: list[Version], replicas: int | None) -> None:
        wanted = self._wb.wait_replicas
        if replicas is not None and replicas < wanted:
            raise NotReplicated(versions, replicas, wanted)

    async def set(self, doc_id: Any, doc: Mapping[str, Any]) -> Version:
        """Store the whole document; returns the write's version.

        ``doc`` must be a mapping (``None`` is refused with ``InvalidDocument``:
        ``delete`` deletes).

        Raises:
            InvalidInput: a bad id or document (``InvalidDocument`` and its kinds,
                ``IdMismatch``, ``UnsupportedIdType``; ``MissingShardKey`` when the
                collection is sharded and ``doc`` lacks a shard key field); nothing was written.
            ClientClosed: after ``aclose()``.
            BacklogFull, RedisOutOfMemory: Redis refused the write; nothing was written.
            CacheUnavailable: Redis did not answer within ``redis_timeout``
                (``written`` says whether the outcome is unknown).
            ConnectionPoolExhausted: no Redis connection became free in time.
            NotReplicated: written, but fewer than ``wait_replicas`` replicas confirmed it.
            PartitionCountMismatch, CodecMismatch: Redis records other settings (first use).
            DatabaseUnavailable: the partition had to be seeded on a new Redis primary
                (after a failover or a restart, or the first write of a deployment) and
                MongoDB did not answer the read of the version floor within the read
                policy's ``mongo_timeout`` seconds; nothing was written.
        """
        with self._wb.calling():
            version = await self._write(self._prepare(doc_id, _document(doc)))
        assert version is not None
        return version

    async def delete(self, doc_id: Any, *, shard_key: Mapping[str, Any] | None = None) -> Version:
        """Delete the document (a tombstone until MongoDB has it).

        On a sharded collection the delete needs the document's shard key values:
        ``shard_key={field: value}``, or, without it, those of the document as
        stored (the cache entry, else one MongoDB ``find_one`` by ``_id``).

        Raises: as ``set`` (``UnsupportedIdType`` for a bad id); ``MissingShardKey``
        when the collection is sharded, ``shard_key`` is not given and the document
        is not stored; ``InvalidInput`` for ``shard_key`` on an unsharded collection,
        and ``InvalidDocument`` (its kinds) for values a document could not hold.
        """
        with self._wb.calling():
            encode_id(doc_id)
            shard = await self._delete_shard(doc_id, shard_key)
            version = await self._write(self._prepare(doc_id, None, shard))
        assert version is not None
        return version

    async def _delete_shard(
        self, doc_id: Any, given: Mapping[str, Any] | None
    ) -> ShardValues | None:
        if self.shard_key is None:
            if given is not None:
                raise InvalidInput(f"collection {self.name!r} has no shard key: {given!r}")
            return None
        if given is not None:
            values = self.shard_key.given(given)
            # Checked as a document is: the worker decodes them under the deployment's
            # codec options and filters on them (an operator would change the match).
            encode_document(doc_id, values, self._wb.codec_options)
            return values
        return self.shard_key.for_write((await self._read_current(doc_id)).doc, None)

    async def patch(self, doc_id: Any, fields: Mapping[str, Any]) -> Version:
        """Merge ``fields`` into the top level of the document, atomically.

        A missing document is created from ``fields``.

        Raises: as ``modify``; ``InvalidDocument`` when ``fields`` is not a
        mapping or not storable, ``IdMismatch`` for an ``_id`` other than ``doc_id``.
        """
        with self._wb.calling():
            return await self._patch(doc_id, fields)

    async def _patch(self, doc_id: Any, fields: Mapping[str, Any]) -> Version:
        if not isinstance(fields, Mapping):
            raise InvalidDocument(f"patch fields must be a mapping, not {type(fields).__name__}")
        if "_id" in fields and not same_id(fields["_id"], doc_id):
            raise IdMismatch(f"patch _id {fields['_id']!r} differs from the id {doc_id!r}")
        # Refuse bad fields before any read, even those the merge would drop.
        encode_document(doc_id, fields, self._wb.codec_options)
        patch = dict(fields)

        def merge(doc: Document | None) -> Document:
            return {**(doc or {}), **patch}

        return await self._modify(doc_id, merge)

    async def modify(self, doc_id: Any, fn: Modifier) -> Version:
        """Replace the document with ``fn(current)``; ``None`` from ``fn`` deletes it.

        ``fn`` (sync or async) gets a copy of the current document, or ``None``
        if there is none, and may be called more than once: when another writer
        gets in first, the change is recomputed on the newer document.

        Raises:
            InvalidInput: a bad id, or ``fn`` returned something not storable
                (``InvalidDocument``) or with another ``_id`` (``IdMismatch``); on a
                sharded collection, a result without the shard key (``MissingShardKey``,
                also for deleting an absent document) or changing a stored document's
                shard key value (``ShardKeyChanged``). Nothing was written.
            TooManyConflicts: other writers won ``max_conflict_retries`` times in a row.
            BacklogFull, RedisOutOfMemory, NotReplicated, PartitionCountMismatch: as ``set``.
            pymongo.errors.PyMongoError: reading a document absent from Redis failed.
            DatabaseUnavailable: that read had no answer within ``mongo_timeout`` seconds.
            Whatever ``fn`` raises, with nothing written.
        """
        with self._wb.calling():
            return await self._modify(doc_id, fn)

    async def _modify(self, doc_id: Any, fn: Modifier) -> Version:
        if not callable(fn):
            raise InvalidInput(f"modify needs a function, not {type(fn).__name__}")
        encode_id(doc_id)
        backoff = Backoff(base=0.001, cap=0.02)
        for _ in range(self._wb.max_conflict_retries):
            current = await self._read_current(doc_id)
            result = fn(None if current.doc is None else dict(current.doc))
            if inspect.isawaitable(result):
                result = await result
            if result is not None and not isinstance(result, Mapping):
                raise InvalidDocument(
                    f"modify's function must return a mapping or None, not {type(result).__name__}"
                )
            if result is not None and "_id" in result and not same_id(result["_id"], doc_id):
                raise IdMismatch(f"modified _id {result['_id']!r} differs from {doc_id!r}")
            shard = None
            if self.shard_key is not None:
                shard = self.shard_key.for_write(current.doc, result)
            version = await self._write(self._prepare(doc_id, result, shard), current.expected)
            if version is not None:
                return version
            # Lost the race: back off a little, with jitter, so that many
            # writers of one document take turns instead of colliding again.
            await anyio.sleep(backoff.next_delay())
        raise TooManyConflicts(
            f"{self.name}/{doc_id!r}: gave up after {self._wb.max_conflict_retries} "
            "concurrent-write conflicts"
        )

    async def _read_current(self, doc_id: Any) -> _Current:
        entry = self._entry_key(doc_id)
        version: Any
        body: Any
        tombstone: Any
        version, body, tombstone = await self._wb.redis_guard.call(
            lambda: self._wb.redis.hmget(entry, ["v", "d", "t"]),
            self._wb.write_timeout,
            "a read",
        )
        doc: Document | None
        if version is not None:
            expected = as_text(version)
            doc = None if tombstone or body is None else self._decode(body)
        else:
            # No entry: it was clean and expired (dirty entries never expire),
            # so MongoDB is current. The script checks the entry is still absent.
            expected = ABSENT
            read = self._mongo().find_one({"_id": doc_id})
            doc = user_view(await within(read, self.reads.mongo_timeout, "the read of a modify"))
        if doc is not None:
            doc.pop("_id", None)
        return _Current(doc, expected)

    def _decode(self, body: Any) -> Document:
        return decode_document(bytes(body), self._wb.codec_options)

    async def set_many(self, items: Iterable[tuple[Any, Mapping[str, Any]]]) -> list[Version]:
        """Store many documents in one pipelined round trip; one Version each, in order.

        Every document is checked before anything is sent. If Redis refuses some
        writes (backlog, memory), ``WriteManyError.results`` says which were made;
        that error comes first, before any ``NotReplicated`` for the rest.
        ``items`` is an iterable of ``(id, document)`` pairs; a document must be
        a mapping (``None`` is refused, not taken as a delete).

        Raises:
            InvalidInput: any bad item, id or document; nothing was sent.
            WriteManyError: Redis refused some writes (``.results``: per item, the
                ``Version`` made or the ``BacklogFull``/``RedisOutOfMemory`` refusal, or
                the ``DatabaseUnavailable`` that kept a new primary's partition unseeded).
            ClientClosed, CacheUnavailable, ConnectionPoolExhausted, NotReplicated,
            PartitionCountMismatch, CodecMismatch, DatabaseUnavailable: as ``set``.
        """
        with self._wb.calling():
            return await self._set_many(items)

    async def _set_many(self, items: Iterable[tuple[Any, Mapping[str, Any]]]) -> list[Version]:
        prepared = [self._prepare(doc_id, _document(doc)) for doc_id, doc in _pairs(items)]
        if not prepared:
            return []
        await self._wb.ensure_ready()
        batch = secrets.token_hex(8)  # the items' nonces: this call's, numbered
        calls = [
            ScriptCall(self._wb.scripts.write, p.script_keys, self._args(p, "", f"{batch}.{i}"))
            for i, p in enumerate(prepared)
        ]
        replies: list[Any] = [None] * len(calls)
        waits: list[Any] = []
        todo = list(range(len(calls)))
        for seeds in range(SEED_ROUNDS + 1):
            if seeds:
                # A new primary refused some: seed their partitions, re-send only those.
                refused = {prepared[i].partition for i in todo}
                try:
                    await self._wb.seeder.seed(refused, self.reads.mongo_timeout)
                except WriteBehindError as exc:  # DatabaseUnavailable, CacheUnavailable
                    if len(todo) == len(calls):
                        raise  # nothing was written
                    for i in todo:
                        replies[i] = exc  # per item: the others were written
                    break
            got, tails = await self._send_many([calls[i] for i in todo])
            waits += tails
            for i, reply in zip(todo, got, strict=True):
                replies[i] = reply
            todo = [i for i in todo if is_unseeded(replies[i])]
            if not todo:
                break
        replicas = fewest_replicas(waits) if self._wb.wait_replicas else None
        results: list[Any] = []
        for p, reply in zip(prepared, replies, strict=True):
            if isinstance(reply, BaseException):
                mapped = map_script_error(reply)
                if isinstance(mapped, BacklogRefused):
                    mapped = BacklogFull(p.partition, mapped.backlog, self._wb.max_backlog)
                results.append(mapped)
                continue
            version = written_version(reply, self.name, p.doc_id)
            results.append(version)
            self._reader.wrote(p.doc_id, version)
        if any(isinstance(r, BaseException) for r in results):
            raise WriteManyError(results)
        self._check_replicated(results, replicas)
        return results

    async def _send_many(self, calls: list[ScriptCall]) -> tuple[list[Any], list[Any]]:
        """``run_scripts`` for ``set_many``: replies in place (errors too), ``WAIT`` replies."""
        return await self._wb.redis_guard.call(
            lambda: run_scripts(
                self._wb.redis,
                calls,
                trailing=self._wait_command() if self._wb.wait_replicas else (),
                raise_on_error=False,
            ),
            self._wb.write_timeout,
            "a write",
            len(calls),
        )

    # -- reading ------------------------------------------------------------

    def _mongo(self) -> Any:
        return self._wb.mongo_collection(self.name)

    async def get(self, doc_id: Any) -> Document | None:
        """The newest acknowledged document, or ``None`` if absent (README, "Reading").

        Redis first; a miss reads MongoDB and fills the cache (fenced by
        version). When Redis does not answer within ``redis_timeout``, MongoDB.

        Raises:
            ClientClosed: after ``aclose()``.
            UnsupportedIdType: ``doc_id`` is not a type a document id can have.
            pymongo.errors.PyMongoError: MongoDB failed when it had to be read.
            DatabaseUnavailable: MongoDB had to be read and did not answer within
                the read policy's ``mongo_timeout`` seconds.
        """
        with self._wb.calling():
            return await self._reader.get(doc_id)

    async def get_many(self, ids: Iterable[Any]) -> dict[Any, Document | None]:
        """``{id: document or None}`` for ``ids``, keyed by the ids as given, in their order.

        One Redis round trip for the entries, one MongoDB ``find`` for the misses.
        Raises: as ``get``.
        """
        with self._wb.calling():
            return await self._reader.get_many(ids)

    async def get_versioned(self, doc_id: Any) -> Versioned:
        """``Versioned(document, version)``: the document as ``get`` reads it, with the
        version it was read at (``None`` for both when the document is absent).

        The version is the one the answer came from (the cache entry's, or the
        one MongoDB stored, when it was loaded), so it names exactly this
        document's content: what an HTTP ``ETag`` is made from (``writebehind.http``).
        Raises: as ``get``.
        """
        with self._wb.calling():
            return await self._reader.get_versioned(doc_id)

    async def version(self, doc_id: Any) -> Version | None:
        """The document's current version, or ``None`` when it is absent, without its body.

        Reads only the cache entry's version and its tombstone and negative
        flags (one ``HMGET``); when there is no entry, it reads the document
        through the normal fenced path, which fills the entry. Enough to answer
        an HTTP conditional request with 304 (``writebehind.http``). With a near
        cache, a document held there answers with no Redis command.
        Raises: as ``get``.
        """
        with self._wb.calling():
            return await self._reader.version(doc_id)

    async def warm(self, ids: Iterable[Any]) -> int:
        """Load the ids missing from the cache and fill them; returns how many were filled.

        Raises: as ``get_many`` (``InvalidInput`` for ``ids`` that are not an
        iterable of document ids, ``DatabaseUnavailable``, ``ClientClosed``).
        """
        with self._wb.calling():
            return await self._reader.warm(ids)

    async def wait_persisted(self, version: Version, timeout: float = 5.0) -> None:
        """Return once MongoDB holds ``version`` of its document, or a newer one.

        ``timeout`` is in seconds. (``timeout=`` is the SDK's public contract,
        hence the ASYNC109 exemption.)

        Raises:
            DeadLettered: the write is in the dead-letter stream instead (with the
                letter's id and reason), raised as soon as it is seen.
            PersistTimeout: MongoDB did not hold it within ``timeout`` (a ``TimeoutError``).
            InvalidInput: ``version`` is not a ``Version`` returned by a write to
                this collection, or ``timeout`` is not a number >= 0.
            ClientClosed: after ``aclose()``.
            pymongo.errors.PyMongoError: MongoDB failed.
        """
        if not isinstance(version, Version) or version.collection is None:
            raise InvalidInput(
                f"wait_persisted needs a Version returned by a write, not {version!r}"
            )
        if version.collection != self.name:
            raise InvalidInput(
                f"version {version} is of collection {version.collection!r}, not {self.name!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise InvalidInput(f"timeout must be a number of seconds >= 0: {timeout!r}")
        with self._wb.calling():
            await wait_persisted(self._wb, version, timeout)


def _document(doc: Any) -> Mapping[str, Any]:
    """A document argument of a write: a mapping, never ``None`` (which would delete)."""
    if not isinstance(doc, Mapping):
        hint = "; use delete() to delete" if doc is None else ""
        raise InvalidDocument(f"a document must be a mapping, not {type(doc).__name__}{hint}")
    return doc


def _pairs(items: Any) -> list[tuple[Any, Any]]:
    """``set_many``'s items as checked ``(id, document)`` pairs."""
    if isinstance(items, Mapping | str | bytes) or not isinstance(items, Iterable):
        raise InvalidInput(
            f"set_many needs an iterable of (id, document) pairs, not {type(items).__name__}"
        )
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidInput(f"set_many item {i} is not an (id, document) pair: {item!r:.80}")
        pairs.append((item[0], item[1]))
    return pairs
