"""Whether a MongoDB change makes a cache entry wrong (no IO).

The rule does not try to tell writebehind's own writes from others by the
``_wb`` version: a direct ``$set`` of other fields, or a ``replace_one`` that
copies ``_wb``, leaves that version as it was. It asks instead whether the
cache already holds exactly what MongoDB now holds:

- a dirty entry (no TTL) stays: its pending write is newer than the change
  and will win, whoever made the change;
- a clean entry at the same ``_wb`` version with the same body stays: that is
  writebehind's own write (the worker wrote that version from that entry) or
  a change that changed nothing; but not for a change that provably wrote no
  new ``_wb`` version (``foreign``: an update whose diff leaves ``_wb`` alone;
  every worker write writes a new version). Such a change is a direct write
  whatever Redis holds now: another process may have filled the new body
  before the change was handled, while near caches still hold the old body
  under the same version, and only the eviction's invalidation record
  reaches them;
- anything else is evicted: a different body under the same version (a
  direct write), an older or newer version, a document deleted or created
  behind the cache's back, or no entry at all (a near cache may still hold
  the document, and a fill may be loading it: the eviction marker and the
  invalidation record are made all the same).

An eviction costs a miss at worst; keeping a stale entry costs a stale read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from bson.codec_options import CodecOptions

from writebehind.core.codec import META_FIELD, decode_document, user_view
from writebehind.core.version import Version
from writebehind.sdk.reading.entry import CachedEntry

Decision = Literal["dirty", "same", "evict"]


def stored_version(raw: Mapping[str, Any] | None) -> Version | None:
    """The ``_wb.v`` version a MongoDB document carries (``None``: none, or malformed)."""
    if raw is None:
        return None
    meta = raw.get(META_FIELD)
    if not isinstance(meta, Mapping) or "v" not in meta:
        return None
    try:
        return Version.from_pair(meta["v"])
    except (TypeError, ValueError):
        return None


def foreign(change: Mapping[str, Any]) -> bool:
    """Whether a change event provably wrote no new ``_wb`` version, so is not
    writebehind's: an ``update`` whose diff (``updateDescription``) names no
    ``_wb`` field. Replace, insert and delete events carry no diff: unknown."""
    if change.get("operationType") != "update":
        return False
    diff = change.get("updateDescription")
    if not isinstance(diff, Mapping):
        return False
    fields = [*(diff.get("updatedFields") or {}), *(diff.get("removedFields") or [])]
    prefix = META_FIELD + "."
    return not any(f == META_FIELD or str(f).startswith(prefix) for f in fields)


def decide(
    raw: Mapping[str, Any] | None,
    entry: CachedEntry,
    options: CodecOptions[Any],
    *,
    direct: bool = False,
) -> Decision:
    """``raw`` is the document MongoDB holds after the change (``None``: deleted);
    ``direct``: the change is known not to be writebehind's (``foreign``)."""
    if entry.present and not entry.clean:
        return "dirty"
    if direct or not entry.present:
        return "evict"
    doc = user_view(raw)
    if doc is None:
        return "same" if entry.reads_absent else "evict"
    if entry.reads_absent or entry.body is None:
        return "evict"
    if stored_version(raw) != entry.version:
        return "evict"
    return "same" if decode_document(entry.body, options) == doc else "evict"
