"""Key and stream layout: which partition a document lives in, and the Redis key names.

All keys of one partition share the hash tag ``{<prefix>:p<N>}``, so the write
script, which touches a document's cache entry and its partition stream, is
legal on Redis Cluster, and a document's records stay in one ordered stream.

    {wb}:meta                            hash: partitions = P
    {wb:p3}:stream                       change records of partition 3
    {wb:p3}:seeded                       replication id of the primary the stream was
                                         seeded on (the write script refuses until it is)
    {wb:p3}:dlq                          dead letters of partition 3
    {wb:p3}:doc:<len>:<collection>:<id>  cache entry (hash: v, d, t)
    {wb:p3}:lease:<len>:<collection>:<id> fill lease (string: owner token, short TTL)
    {wb:p3}:fill:<len>:<collection>:<id>  pub/sub channel: a fill of the entry ended
    {wb:p3}:inval                        evictions for direct MongoDB writes and dead letters
                                         (near caches follow)
    {wb:p3}:evicted:<len>:<collection>:<id> eviction marker: Redis ms of the last invalidation
    {wb:p3}:flushed:<len>:<collection>   flush marker: Redis ms of the invalidator's last
                                         emptying of the collection in partition 3 (no TTL)
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

from writebehind.core.errors import ConfigurationError, InvalidCollectionName, UnsupportedIdType

DocId = str | int | ObjectId | uuid.UUID
"""The id types a document may have."""

_PREFIX_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
MAX_PARTITIONS = 4096


def encode_id(doc_id: Any) -> str:
    """Type-tagged text form of an id, so that ``42`` and ``"42"`` get different keys.

    Raises ``UnsupportedIdType`` for a bool, an int outside int64, or another type.
    """
    if isinstance(doc_id, bool):
        raise UnsupportedIdType(f"a bool is not a document id: {doc_id!r}")
    if isinstance(doc_id, str):
        return "s" + doc_id
    if isinstance(doc_id, int):
        if not _INT64_MIN <= doc_id <= _INT64_MAX:
            raise UnsupportedIdType(f"an int id must fit in int64: {doc_id!r}")
        return "i" + str(doc_id)
    if isinstance(doc_id, ObjectId):
        return "o" + str(doc_id)
    if isinstance(doc_id, uuid.UUID):
        return "u" + doc_id.hex
    raise UnsupportedIdType(
        f"document ids must be str, int, bson.ObjectId or uuid.UUID, not {type(doc_id).__name__}"
    )


def validate_collection_name(name: Any) -> str:
    """``name`` if MongoDB accepts it as a collection name, else ``InvalidCollectionName``.

    Rules from https://www.mongodb.com/docs/manual/reference/limits/#naming-restrictions:
    no ``$`` or NUL, no ``system.`` prefix, and (with the database name) short.
    """
    if not isinstance(name, str) or not name:
        raise InvalidCollectionName(f"a collection name must be a non-empty str: {name!r}")
    if "$" in name or "\x00" in name:
        raise InvalidCollectionName(f"a collection name may not contain '$' or NUL: {name!r}")
    if name.startswith("system."):
        raise InvalidCollectionName(f"'system.' collections are reserved: {name!r}")
    if len(name.encode("utf-8")) > 200:
        raise InvalidCollectionName(f"collection name longer than 200 bytes: {name[:40]!r}...")
    return name


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Names every Redis key of one deployment (a prefix and a partition count).

    Raises ``ConfigurationError`` when made with a prefix that is not 1-64 of
    ``A-Z a-z 0-9 _ . -`` or a partition count outside 1..``MAX_PARTITIONS``.
    """

    prefix: str = "wb"
    partitions: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or not _PREFIX_RE.fullmatch(self.prefix):
            raise ConfigurationError(
                f"prefix must be 1-64 of A-Z a-z 0-9 _ . - (no braces or colons): {self.prefix!r}"
            )
        if type(self.partitions) is not int or not 1 <= self.partitions <= MAX_PARTITIONS:
            raise ConfigurationError(
                f"partitions must be an int from 1 to {MAX_PARTITIONS}: {self.partitions!r}"
            )

    @property
    def meta(self) -> str:
        return f"{{{self.prefix}}}:meta"

    def partition_of(self, collection: str, doc_id: Any) -> int:
        """Stable across processes and Python versions (no ``hash()``)."""
        return self._partition(collection, encode_id(doc_id))

    def _partition(self, collection: str, encoded: str) -> int:
        raw = f"{collection}\x00{encoded}".encode()
        digest = hashlib.blake2b(raw, digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.partitions

    def entry_of(self, collection: str, doc_id: Any) -> tuple[int, str]:
        """``(partition_of(...), cache(...))`` with the id encoded once (every write locates
        its entry). Raises ``UnsupportedIdType``."""
        encoded = encode_id(doc_id)
        partition = self._partition(collection, encoded)
        return partition, self._doc_key("doc", partition, collection, encoded)

    def _doc_key(self, kind: str, partition: int, collection: str, encoded: str) -> str:
        # The collection is length-prefixed so that no (collection, id) pair can
        # spell another pair's key.
        return f"{self._tag(partition)}:{kind}:{len(collection)}:{collection}:{encoded}"

    def _tag(self, partition: int) -> str:
        return f"{{{self.prefix}:p{partition}}}"

    def stream(self, partition: int) -> str:
        return f"{self._tag(partition)}:stream"

    def seeded(self, partition: int) -> str:
        """The ``master_replid`` of the primary this partition's stream was seeded on
        (``core.floor``): the write script refuses to write under any other."""
        return f"{self._tag(partition)}:seeded"

    def dead_letters(self, partition: int) -> str:
        return f"{self._tag(partition)}:dlq"

    def dead_letter_sources(self, partition: int) -> str:
        """Hash: stream entry id -> the id of its letter (so an entry gets one letter)."""
        return f"{self._tag(partition)}:dlq:src"

    def cache(self, partition: int, collection: str, doc_id: Any) -> str:
        return self._doc_key("doc", partition, collection, encode_id(doc_id))

    def lease(self, partition: int, collection: str, doc_id: Any) -> str:
        """The fill lease of a cache entry: in the entry's hash slot, never a cache key."""
        return self._doc_key("lease", partition, collection, encode_id(doc_id))

    def lease_of_entry(self, partition: int, entry: str) -> str:
        """``lease(...)`` of the document whose cache entry is ``entry`` (from ``entry_of``),
        without encoding the id again (every write names it: core/scripts.py, WRITE)."""
        head = f"{self._tag(partition)}:doc:"
        if not entry.startswith(head):
            raise ValueError(f"not a cache entry of partition {partition}: {entry!r}")
        return f"{self._tag(partition)}:lease:{entry[len(head) :]}"

    def fill_channel(self, partition: int, collection: str, doc_id: Any) -> str:
        """The pub/sub channel on which a fill (or a released lease) of the entry is announced."""
        return self._doc_key("fill", partition, collection, encode_id(doc_id))

    def is_cache_key(self, partition: int, key: str) -> bool:
        """Whether ``key`` is a cache entry key of ``partition`` (for keys read from records)."""
        return key.startswith(f"{self._tag(partition)}:doc:")

    def cache_names(self, partition: int, key: str) -> tuple[str, str] | None:
        """The collection and encoded id a cache key of ``partition`` names (``cache``'s
        inverse), or ``None`` if ``key`` is not one (for keys read from records)."""
        prefix = f"{self._tag(partition)}:doc:"
        length, sep, rest = key.removeprefix(prefix).partition(":")
        if not key.startswith(prefix) or not sep or not length.isdigit():
            return None
        n = int(length)
        if rest[n : n + 1] != ":" or not rest[n + 1 :]:
            return None
        return rest[:n], rest[n + 1 :]

    def streams(self) -> list[str]:
        return [self.stream(p) for p in range(self.partitions)]

    def invalidations(self, partition: int) -> str:
        """Evictions for direct MongoDB writes and for dead letters (near caches follow it)."""
        return f"{self._tag(partition)}:inval"

    def eviction_marker(self, partition: int, collection: str, doc_id: Any) -> str:
        """Redis time (ms) of the entry's last invalidation: a fill that began before it loses."""
        return self._doc_key("evicted", partition, collection, encode_id(doc_id))

    def flush_marker(self, partition: int, collection: str) -> str:
        """Redis time (ms) at which the invalidator last emptied ``collection``'s clean entries
        in ``partition`` (its resume token was lost, or the collection dropped): a fill that
        began at or before it loses. In the partition's hash slot; one small key per
        partition and collection, with no TTL (a ``volatile-*`` policy never evicts it)."""
        return f"{self._tag(partition)}:flushed:{len(collection)}:{collection}"
