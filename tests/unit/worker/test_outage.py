"""When an outage is logged (writebehind.worker.outage): at once, at an interval, at its end."""

from __future__ import annotations

from writebehind.worker.outage import Kind, OutageTracker


def test_first_failure_at_once_then_one_summary_per_interval_then_the_end() -> None:
    tracker = OutageTracker(interval=30.0)
    first = tracker.failed(100.0, partition=0, error="connection refused", waiting=5)
    assert first is not None and first.kind is Kind.STARTED
    assert (first.waiting, first.attempts, first.failing_for) == (5, 1, 0.0)
    # Other partitions and retries within the interval: no line each.
    assert tracker.failed(101.0, partition=1, error="refused", waiting=3) is None
    assert tracker.failed(129.9, partition=0, error="refused", waiting=6) is None
    summary = tracker.failed(130.0, partition=1, error="timed out", waiting=4)
    assert summary is not None and summary.kind is Kind.ONGOING
    assert (summary.waiting, summary.attempts, summary.failing_for) == (10, 4, 30.0)
    assert summary.error == "timed out"
    assert tracker.failing_for(140.0) == 40.0
    ended = tracker.succeeded(141.0, partition=0)
    assert ended is not None and ended.kind is Kind.ENDED and ended.failing_for == 41.0
    assert tracker.failing_for(142.0) == 0.0
    assert tracker.last_success == 141.0


def test_success_without_an_outage_logs_nothing() -> None:
    tracker = OutageTracker()
    assert tracker.succeeded(1.0, partition=0) is None
    assert tracker.last_success == 1.0


def test_a_new_outage_starts_afresh() -> None:
    tracker = OutageTracker(interval=10.0)
    tracker.failed(0.0, 0, "a", 1)
    tracker.succeeded(5.0, 0)
    again = tracker.failed(6.0, 0, "b", 2)
    assert again is not None and again.kind is Kind.STARTED and again.attempts == 1
