"""The near cache's pure parts: the bounded store, version-aware puts, the staleness rule."""

from __future__ import annotations

from writebehind.core.version import Version
from writebehind.sdk.near.follower import _gap
from writebehind.sdk.near.staleness import FeedClock
from writebehind.sdk.near.store import NearStore

V1, V2, V3 = Version(1, 0), Version(2, 0), Version(3, 0)


def _store(max_entries: int = 10, ttl: float = 5.0) -> tuple[NearStore, list[tuple[str, int]]]:
    evicted: list[tuple[str, int]] = []
    store = NearStore(max_entries, ttl, lambda cause, n: evicted.append((cause, n)))
    store.positioned()
    return store, evicted


def _put(store: NearStore, key: str, doc: object, version: Version, now: float = 0.0) -> bool:
    ticket = store.begin(key)
    try:
        return store.put(ticket, doc, version, now)
    finally:
        store.end(ticket)


def test_a_reply_is_not_stored_after_a_newer_write_seen_in_flight() -> None:
    store, _ = _store()
    ticket = store.begin("k")
    store.written("k", V2)  # the feed applies a newer write while the reply is in flight
    assert store.put(ticket, b"old", V1, 0.0) is False
    assert store.get("k", 0.0) is None
    store.end(ticket)


def test_a_reply_as_new_as_the_write_seen_is_stored() -> None:
    store, _ = _store()
    ticket = store.begin("k")
    store.written("k", V2)
    assert store.put(ticket, b"new", V2, 0.0) is True
    held = store.get("k", 0.0)
    assert held is not None and held.doc == b"new" and held.version == V2


def test_an_invalidation_in_flight_refuses_the_reply_whatever_its_version() -> None:
    store, _ = _store()
    ticket = store.begin("k")
    store.invalidated("k")
    assert store.put(ticket, b"body", V3, 0.0) is False


def test_a_clear_in_flight_refuses_every_open_reply() -> None:
    store, _ = _store()
    a, b = store.begin("a"), store.begin("b")
    store.clear("resync")
    assert store.put(a, b"x", V1, 0.0) is False
    assert store.put(b, b"x", V1, 0.0) is False


def test_a_ticket_opened_after_the_write_is_not_affected() -> None:
    store, _ = _store()
    store.written("k", V2)
    assert _put(store, "k", b"v2", V2)


def test_an_older_put_never_replaces_a_newer_version() -> None:
    store, _ = _store()
    assert _put(store, "k", b"v2", V2)
    assert not _put(store, "k", b"v1", V1)
    held = store.get("k", 0.0)
    assert held is not None and held.version == V2


def test_a_write_evicts_only_older_versions() -> None:
    store, evicted = _store()
    _put(store, "k", b"v2", V2)
    assert store.written("k", V1) is False  # an old record replayed: the copy is newer
    assert store.written("k", V2) is False
    assert store.written("k", V3) is True
    assert store.get("k", 0.0) is None
    assert evicted == [("write", 1)]


def test_own_writes_are_counted_apart() -> None:
    store, evicted = _store()
    _put(store, "k", b"v1", V1)
    store.written("k", V2, "own_write")
    assert evicted == [("own_write", 1)]


def test_entries_expire_after_the_hard_ttl_even_when_read() -> None:
    store, evicted = _store(ttl=5.0)
    _put(store, "k", b"v", V1, now=100.0)
    assert store.get("k", 104.9) is not None
    assert store.get("k", 105.0) is None
    assert evicted == [("ttl", 1)]


def test_the_least_recently_read_goes_first_when_full() -> None:
    store, evicted = _store(max_entries=2)
    _put(store, "a", b"a", V1)
    _put(store, "b", b"b", V1)
    store.get("a", 0.0)
    _put(store, "c", b"c", V1)
    assert store.get("b", 0.0) is None
    assert store.get("a", 0.0) is not None and store.get("c", 0.0) is not None
    assert len(store) == 2
    assert evicted == [("size", 1)]


def test_tickets_are_forgotten_when_ended() -> None:
    store, _ = _store()
    ticket = store.begin("k")
    store.end(ticket)
    store.end(ticket)
    assert store._open == {}


def test_the_feed_is_servable_only_within_max_stale() -> None:
    clock = FeedClock()
    assert not clock.servable(10.0, 0.5)  # never caught up
    clock.caught_up(10.0)
    assert clock.servable(10.5, 0.5)
    assert not clock.servable(10.51, 0.5)
    clock.caught_up(9.0)  # an older XREAD returning late does not move it back
    assert clock.caught_up_at == 10.0
    clock.lost()
    assert not clock.servable(10.0, 0.5)


def _info(first: str | None, added: int, length: int) -> dict[str, object]:
    entry = None if first is None else [first.encode(), []]
    return {"first-entry": entry, "entries-added": added, "length": length}


def test_a_gap_is_seen_only_when_records_after_the_position_were_trimmed() -> None:
    last = Version(10, 0)
    assert not _gap(_info("9-0", 20, 11), last, 10)  # trimmed only up to our position
    assert not _gap(_info("11-0", 12, 2), last, 10)  # the two after us are both there
    assert _gap(_info("12-0", 12, 1), last, 10)  # one of the two after us is gone
    assert _gap(_info(None, 12, 0), last, 10)  # all trimmed, some unread
    assert not _gap(_info(None, 10, 0), last, 10)  # all trimmed, all read
    assert _gap(_info(None, 3, 0), last, 10)  # deleted and made again
    assert _gap(None, last, 10) and not _gap(None, Version(0, 0), 0)


def test_no_reply_is_kept_from_a_read_that_began_before_the_feed_had_its_position() -> None:
    store = NearStore(10, 5.0)
    early = store.begin("k")  # the feed has not read the streams' heads yet
    store.positioned()
    assert store.put(early, b"v", V1, 0.0) is False
    assert _put(store, "k", b"v", V1)


def test_after_losing_its_position_the_store_keeps_nothing_until_positioned_again() -> None:
    store, _ = _store()
    before = store.begin("k")
    store.unpositioned()
    store.clear("resync")
    during = store.begin("k")
    assert store.put(during, b"v", V1, 0.0) is False
    store.positioned()
    assert store.put(before, b"v", V1, 0.0) is False
    assert _put(store, "k", b"v", V1)


def test_a_flush_keeps_the_position() -> None:
    store, evicted = _store()
    _put(store, "k", b"v", V1)
    store.clear("flush")
    assert evicted == [("flush", 1)]
    assert _put(store, "k", b"v", V1)
