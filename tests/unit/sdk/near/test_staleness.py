"""The staleness rule: per-partition clocks, and what a feed reply proves (no IO)."""

from __future__ import annotations

from writebehind.sdk.near.follower import known_at
from writebehind.sdk.near.staleness import ClockGroup, FeedClock


def test_the_group_is_caught_up_as_of_its_oldest_partition() -> None:
    overall = FeedClock()
    group = ClockGroup(overall)
    a, b = group.part(), group.part()
    a.caught_up(10.0)
    assert overall.caught_up_at is None  # b never was: nothing may be served
    b.caught_up(8.0)
    assert overall.caught_up_at == 8.0
    assert not overall.servable(8.6, 0.5)  # b is 0.6 s behind, whatever a says
    b.caught_up(12.0)
    assert overall.caught_up_at == 10.0
    a.lost()  # one partition's master is gone: the whole feed stops vouching
    assert overall.caught_up_at is None
    a.caught_up(13.0)
    assert overall.caught_up_at == 12.0


def test_a_partition_added_later_holds_the_group_back_until_caught_up() -> None:
    overall = FeedClock()
    group = ClockGroup(overall)
    group.part().caught_up(5.0)
    assert overall.caught_up_at == 5.0
    group.part()
    assert overall.caught_up_at is None


def test_an_empty_reply_after_the_whole_block_proves_the_block_too() -> None:
    # The server waited 200 ms after the command arrived and no record came.
    assert known_at(10.0, 10.25, None, 200) == 10.2
    assert known_at(10.0, 10.25, [], 200) == 10.2


def test_a_reply_with_records_or_quicker_than_the_block_proves_only_the_send() -> None:
    entries = [(b"{t:p0}:stream", [(b"1-0", {b"c": b"users"})])]
    assert known_at(10.0, 10.25, entries, 200) == 10.0  # woken by a record: when, unknown
    assert known_at(10.0, 10.05, None, 200) == 10.0  # not a timeout (CLIENT UNBLOCK)
