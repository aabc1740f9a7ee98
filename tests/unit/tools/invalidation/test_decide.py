"""The invalidator's rule: a change leaves the cache alone only when the cache is right."""

from __future__ import annotations

from typing import Any

import bson
from bson.codec_options import CodecOptions

from writebehind.core.version import Version
from writebehind.sdk.reading.entry import MISSING, CachedEntry
from writebehind.tools.invalidation.decide import decide, foreign, stored_version

OPTIONS: CodecOptions[Any] = CodecOptions()
V1 = Version(1, 0)


def _entry(
    body: dict[str, Any] | None,
    version: Version = V1,
    *,
    ttl_ms: int = 60_000,
    tombstone: bool = False,
    negative: bool = False,
) -> CachedEntry:
    raw = None if body is None else bson.encode(body)
    return CachedEntry(version, raw, tombstone, negative, None, ttl_ms)


def _doc(n: int, version: list[int] | None = None, **meta: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": "a", "n": n}
    if version is not None:
        doc["_wb"] = {"v": version, **meta}
    return doc


def test_a_dirty_entry_is_left_for_its_pending_write() -> None:
    assert decide(_doc(2), _entry({"_id": "a", "n": 9}, ttl_ms=-1), OPTIONS) == "dirty"
    assert decide(None, _entry(None, tombstone=True, ttl_ms=-1), OPTIONS) == "dirty"


def test_writebehinds_own_write_matches_the_clean_entry() -> None:
    entry = _entry({"_id": "a", "n": 1})
    assert decide(_doc(1, [1, 0]), entry, OPTIONS) == "same"


def test_a_direct_set_under_the_same_version_is_evicted() -> None:
    entry = _entry({"_id": "a", "n": 1})
    assert decide(_doc(2, [1, 0]), entry, OPTIONS) == "evict"


def test_a_replace_that_drops_or_changes_the_version_is_evicted() -> None:
    entry = _entry({"_id": "a", "n": 1})
    assert decide(_doc(1), entry, OPTIONS) == "evict"
    assert decide(_doc(1, [0, 5]), entry, OPTIONS) == "evict"


def test_deletes_evict_documents_and_leave_absent_entries() -> None:
    assert decide(None, _entry({"_id": "a", "n": 1}), OPTIONS) == "evict"
    assert decide(None, _entry(None, tombstone=True), OPTIONS) == "same"
    assert decide(None, _entry(None, negative=True), OPTIONS) == "same"
    # A tombstone document reads as absent too.
    assert decide(_doc(1, [1, 0], deleted=True), _entry(None, tombstone=True), OPTIONS) == "same"


def test_a_document_created_behind_a_negative_entry_is_evicted() -> None:
    assert decide(_doc(1), _entry(None, Version(0, 0), negative=True), OPTIONS) == "evict"


def test_no_entry_still_evicts_for_near_caches_and_the_fill_window() -> None:
    assert decide(_doc(1, [1, 0]), MISSING, OPTIONS) == "evict"
    assert decide(None, MISSING, OPTIONS) == "evict"


def test_a_malformed_version_is_no_version() -> None:
    assert stored_version({"_wb": {"v": "x"}}) is None
    assert stored_version({"_wb": "x"}) is None
    assert stored_version(None) is None
    assert stored_version({"_wb": {"v": [3, 4]}}) == Version(3, 4)


def _update(updated: dict[str, Any], removed: list[str] | None = None) -> dict[str, Any]:
    diff = {"updatedFields": updated, "removedFields": removed or [], "truncatedArrays": []}
    return {"operationType": "update", "updateDescription": diff}


def test_an_update_that_leaves_the_version_alone_is_never_writebehinds() -> None:
    assert foreign(_update({"n": 2}))
    assert foreign(_update({}, ["n"]))
    assert not foreign(_update({"n": 2, "_wb": {"v": [2, 0]}}))  # a worker's, as a diff
    assert not foreign(_update({"_wb.v": [2, 0]}))
    assert not foreign(_update({}, ["_wb"]))
    assert not foreign({"operationType": "replace"})  # no diff: unknown
    assert not foreign({"operationType": "update"})


def test_a_foreign_change_evicts_a_clean_entry_that_already_holds_its_body() -> None:
    # Refilled by another process before the change was handled: Redis is right, but
    # near caches may hold the old body under the same version; only an eviction tells them.
    entry = _entry({"_id": "a", "n": 2})
    assert decide(_doc(2, [1, 0]), entry, OPTIONS) == "same"
    assert decide(_doc(2, [1, 0]), entry, OPTIONS, direct=True) == "evict"
    assert decide(_doc(2), _entry({"_id": "a", "n": 9}, ttl_ms=-1), OPTIONS, direct=True) == (
        "dirty"
    )
