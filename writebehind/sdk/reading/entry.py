"""A cache entry as the read path sees it, parsed from Redis replies (no IO)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from writebehind.core.replies import as_text
from writebehind.core.version import ZERO, Version

ENTRY_FIELDS = ("v", "d", "t", "a", "x")
"""The hash fields a read asks for, in this order (see core/scripts_read.py, READ)."""

VERSION_FIELDS = ("v", "t", "a")
"""The hash fields a version-only read asks for: the version, the tombstone and negative flags."""


@dataclass(frozen=True, slots=True)
class CachedEntry:
    """One cache entry: ``version`` is ``None`` when there is none.

    ``ttl_ms`` is Redis's PTTL: -2 no entry, -1 no TTL (dirty: its write is not
    in MongoDB yet), else the ms left of a clean entry. ``negative``: MongoDB
    held no document when it was filled. ``load_ms``: how long that fill's
    MongoDB read took (XFetch's delta), when known.
    """

    version: Version | None
    body: bytes | None
    tombstone: bool
    negative: bool
    load_ms: int | None
    ttl_ms: int

    @property
    def present(self) -> bool:
        return self.version is not None

    @property
    def clean(self) -> bool:
        return self.ttl_ms >= 0

    @property
    def reads_absent(self) -> bool:
        """The document reads as ``None``: deleted, negative, or an entry without a body."""
        return self.tombstone or self.negative or self.body is None


MISSING = CachedEntry(None, None, False, False, None, -2)


def parse_entry(fields: Sequence[Any], pttl: Any) -> CachedEntry:
    """``fields`` are the values of ``ENTRY_FIELDS`` (HMGET), ``pttl`` the entry's PTTL."""
    version, body, tombstone, negative, load_ms = fields
    if version is None:
        return MISSING
    return CachedEntry(
        Version.parse(version),
        None if body is None else bytes(body),
        bool(tombstone),
        bool(negative),
        None if load_ms is None else int(load_ms),
        int(pttl),
    )


@dataclass(frozen=True, slots=True)
class Versioned:
    """A document with the version it was read at (``Collection.get_versioned``).

    ``document`` is ``None`` when the document is absent (never written, deleted,
    or remembered as absent), and ``version`` is then ``None`` too. A document
    MongoDB holds without a writebehind version (written there directly, never
    through the SDK) has version ``0-0`` (``core.version.ZERO``).
    """

    document: dict[str, Any] | None
    version: Version | None


def parse_version_fields(fields: Sequence[Any]) -> tuple[str | None, Version | None]:
    """``fields`` are the values of ``VERSION_FIELDS`` (HMGET). Returns how the read counts
    (``None``: no entry; ``hit``, ``deleted`` or ``negative_hit``) and the document's
    version (``None`` unless a document is there)."""
    version, tombstone, negative = fields
    if version is None:
        return None, None
    if tombstone:
        return "deleted", None
    if negative:
        return "negative_hit", None
    return "hit", Version.parse(version)


@dataclass(frozen=True, slots=True)
class ScriptReply:
    """The LEASE or FILL script's reply: a status word, Redis time (ms), the entry after.

    ``holder``: LEASE's ``w`` (another process holds the lease) names that
    holder's token; ``""`` otherwise.
    """

    status: str
    now_ms: int
    entry: CachedEntry
    holder: str = ""


def parse_script_reply(reply: Sequence[Any]) -> ScriptReply:
    status = as_text(reply[0])
    entry = parse_entry(reply[2:7], reply[7]) if len(reply) >= 8 else MISSING
    holder = reply[2] if len(reply) == 3 and reply[2] is not None else b""
    text = holder.decode() if isinstance(holder, bytes) else str(holder)
    return ScriptReply(status, int(reply[1]), entry, text)


def absent_version(stored: Version | None) -> Version:
    """The version a negative entry carries: MongoDB's tombstone's, or 0-0 for no document."""
    return ZERO if stored is None else stored
