"""Unit tests for the pure helpers of writebehind.tools.stream_stats (no servers)."""

from __future__ import annotations

from writebehind.tools.stream_stats import (
    ConsumerStats,
    ConsumerSummary,
    PartitionStats,
    age_seconds,
    summarise_consumers,
)


def test_age_seconds_uses_the_entry_id_time() -> None:
    assert age_seconds("1000-5", 91_000) == 90.0
    assert age_seconds("5000-0", 1000) == 0  # a clock behind the id: never negative


def test_each_consumer_once_with_pending_summed_and_the_shortest_idle() -> None:
    parts = (
        PartitionStats(0, consumers=(ConsumerStats("b", 2, 500), ConsumerStats("a", 1, 90))),
        PartitionStats(1, consumers=(ConsumerStats("b", 3, 40),)),
        PartitionStats(2),
    )
    assert summarise_consumers(parts) == (
        ConsumerSummary("a", 1, 90, (0,)),
        ConsumerSummary("b", 5, 40, (0, 1)),
    )
