"""The pure decision of ``partitions set``: every reason to refuse, and none when safe."""

from __future__ import annotations

from writebehind.tools.partitions import resize_problems
from writebehind.tools.stream_stats import (
    ConsumerStats,
    PartitionStats,
    StreamStats,
    summarise_consumers,
)


def stats(*partitions: PartitionStats) -> StreamStats:
    return StreamStats("writebehind", partitions, 1_000_000, summarise_consumers(partitions))


IDLE = ConsumerStats("w1", 0, 90_000)


def test_a_drained_stopped_quiet_deployment_may_change() -> None:
    drained = stats(*(PartitionStats(p, stream_length=5, consumers=(IDLE,)) for p in range(4)))
    assert resize_problems(drained, 8, [60_000] * 4, worker_idle_ms=30_000, quiet_ms=10_000) == []
    assert resize_problems(drained, 2, [None] * 4, worker_idle_ms=30_000, quiet_ms=10_000) == []


def test_each_reason_is_named() -> None:
    busy = ConsumerStats("w2", 0, 100)
    parts = (
        PartitionStats(0, stream_length=3, pending=1, lag=2, consumers=(busy,)),
        PartitionStats(1),
        PartitionStats(2, dead_letters=3),
        PartitionStats(3),
    )
    problems = resize_problems(
        stats(*parts), 2, [500, None, None, None], worker_idle_ms=30_000, quiet_ms=10_000
    )
    assert problems == [
        "partition 0 has 1 pending and 2 undelivered records: let the workers drain it",
        "partition 2 holds 3 dead letters: re-drive or purge them first (the partition will "
        "no longer exist)",
        "consumer 'w2' was active 0.1s ago: stop every worker",
        "a record was written 0.5s ago: stop every producer",
    ]


def test_the_same_count_or_one_out_of_range_is_refused() -> None:
    four = stats(*(PartitionStats(p) for p in range(4)))
    assert resize_problems(four, 4, [None] * 4, worker_idle_ms=0, quiet_ms=0) == [
        "the deployment already has 4 partitions"
    ]
    assert (
        "from 1 to 4096" in resize_problems(four, 5000, [None] * 4, worker_idle_ms=0, quiet_ms=0)[0]
    )
