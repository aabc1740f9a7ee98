"""Unit tests for writebehind.tools.durations: the two ways tools print a duration."""

from __future__ import annotations

import pytest

from writebehind.tools.durations import clock, compact


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "--:--"), (-1, "--:--"), (float("nan"), "--:--"), (7, "0:07"), (754, "12:34"),
     (3723, "1:02:03"), (90_000, "25:00:00"), (360_001, "--:--")],
)  # fmt: skip
def test_clock(seconds: float | None, text: str) -> None:
    assert clock(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4, "0.4s"), (59.94, "59.9s"), (185, "3m05s"), (7380, "2h03m"),
     (86_400 * 4 + 7200, "4d02h")],
)  # fmt: skip
def test_compact(seconds: float | None, text: str) -> None:
    assert compact(seconds) == text
