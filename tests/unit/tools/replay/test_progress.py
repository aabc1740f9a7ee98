"""The replay's progress line (no IO)."""

from __future__ import annotations

import pytest

from writebehind.tools.replay.progress import duration, render, snapshot


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00"),
        (7.4, "0:07"),
        (59.6, "1:00"),
        (754, "12:34"),
        (3723, "1:02:03"),
        (None, "--:--"),
        (-1, "--:--"),
        (float("nan"), "--:--"),
        (10**9, "--:--"),
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_rate_and_eta_follow_progress() -> None:
    snap = snapshot(done=1200, estimated_total=3000, elapsed=2.0)
    assert snap.rate == 600
    assert snap.eta == 3.0
    assert render(snap, width=10) == ("[####......] 1,200/~3,000 records   40%  600/s  ETA 0:03")


def test_total_never_falls_below_done() -> None:
    # The total is an estimate; once passed, the line shows 100% and no time left.
    snap = snapshot(done=50, estimated_total=40, elapsed=1.0)
    assert snap.total == 50
    assert snap.eta == 0
    assert render(snap, width=4).startswith("[####] 50/~50 records  100%")


def test_nothing_done_yet_has_no_eta() -> None:
    snap = snapshot(done=0, estimated_total=100, elapsed=0.0)
    assert snap.rate == 0
    assert snap.eta is None
    assert render(snap, width=4) == "[....] 0/~100 records    0%  0/s  ETA --:--"
    assert render(snapshot(0, 0, 0.0), width=2) == "[##] 0/~0 records  100%  0/s  ETA --:--"
