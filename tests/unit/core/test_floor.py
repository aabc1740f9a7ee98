"""The version floor's pure rules: when a writer raises it, to what, and the seed id."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from writebehind.core.errors import InvalidVersion
from writebehind.core.floor import (
    MARGIN_MS,
    FloorTracker,
    floor_id,
    floor_ms,
    floor_update,
    seed_id,
)
from writebehind.core.keys import KeySpace
from writebehind.core.replies import is_unseeded
from writebehind.core.version import Version


def test_the_first_batch_raises_the_floor_a_margin_past_its_newest_version() -> None:
    tracker = FloorTracker()
    assert tracker.target(1_000) == 1_000 + MARGIN_MS


def test_batches_under_the_floor_this_process_wrote_need_no_update() -> None:
    tracker = FloorTracker()
    tracker.wrote(11_000)
    assert tracker.target(5_000) is None
    assert tracker.target(11_000) is None  # ms == floor is covered: the invariant is ms <= floor
    assert tracker.target(11_001) == 11_001 + MARGIN_MS


def test_an_unacknowledged_raise_covers_nothing() -> None:
    tracker = FloorTracker()
    first = tracker.target(1_000)
    assert first is not None
    # The update failed: wrote() was not called, so the next batch raises again.
    assert tracker.target(1_000) == first


def test_the_floor_this_process_wrote_never_goes_down() -> None:
    tracker = FloorTracker()
    tracker.wrote(50_000)
    tracker.wrote(20_000)  # a slower concurrent raise acknowledged last
    assert tracker.written == 50_000
    assert tracker.target(49_999) is None


def test_one_update_per_margin_while_versions_advance_with_the_clock() -> None:
    tracker = FloorTracker()
    updates = 0
    for ms in range(0, 60_000, 100):  # a batch every 100 ms for a minute
        target = tracker.target(ms)
        if target is not None:
            tracker.wrote(target)
            updates += 1
    # At most one per MARGIN_MS; the next one comes with the first batch past the floor.
    assert 60_000 // (MARGIN_MS + 100) <= updates <= 60_000 // MARGIN_MS


def test_the_update_only_raises() -> None:
    assert floor_update(7) == {"$max": {"ms": 7}}


def test_the_floor_document_is_named_by_the_deployment_prefix() -> None:
    assert floor_id("wb") == "wb:floor"
    assert floor_id("shop") != floor_id("wb")


@pytest.mark.parametrize(
    ("doc", "expected"), [(None, None), ({"_id": "wb:floor", "ms": 0}, 0), ({"ms": 12}, 12)]
)
def test_the_stored_floor_is_read(doc: object, expected: int | None) -> None:
    assert floor_ms(doc) == expected


@pytest.mark.parametrize("doc", [{}, {"ms": -1}, {"ms": "12"}, {"ms": True}, {"ms": 1.5}, [1]])
def test_a_floor_document_edited_into_nonsense_is_refused(doc: object) -> None:
    with pytest.raises(InvalidVersion):
        floor_ms(doc)


def test_the_seed_id_is_above_every_version_the_floor_covers() -> None:
    floor = 1_700_000_000_000
    seed = Version.parse(seed_id(floor))
    assert seed > Version(floor, 2**63 - 1)
    assert seed == Version(floor + 1, 0)


def test_the_seeded_key_shares_the_partition_hash_tag() -> None:
    keys = KeySpace("wb", 16)
    assert keys.seeded(3) == "{wb:p3}:seeded"
    assert keys.seeded(3).split("}")[0] == keys.stream(3).split("}")[0]


def test_an_unseeded_refusal_is_recognised() -> None:
    assert is_unseeded(ResponseError("WBUNSEEDED {wb:p3}:stream"))
    assert not is_unseeded(ResponseError("WBBACKLOG 12"))
    assert not is_unseeded(ValueError("WBUNSEEDED"))
