"""Durations as operators write them (writebehind.durations)."""

from __future__ import annotations

import math

import pytest

from writebehind.durations import format_seconds, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0), ("1.5", 1.5), (".5", 0.5), ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0),
        ("2h", 7200.0), ("7d", 604800.0), ("1h30m", 5400.0), ("1m30s", 90.0), (" 2H ", 7200.0),
        (5, 5.0), (0.25, 0.25), ("0", 0.0), ("-1", -1.0),
    ],
)  # fmt: skip
def test_accepted_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "x", "5x", "30s5m", "1m5", "ms", "5 m", "-5s", "inf", True, None, [1]]
)
def test_refused_forms_name_the_accepted_ones(text: object) -> None:
    with pytest.raises(ValueError, match="30s, 5m, 2h"):
        parse_duration(text)


def test_nan_passes_for_range_checks_to_refuse() -> None:
    assert math.isnan(parse_duration("nan"))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.005, "5ms"), (30, "30s"), (60, "1m"), (86400, "1d"), (7 * 86400, "7d"), (0.5, "500ms"),
     (90, "90s"), (0, "0s"), (1.25, "1250ms")],
)  # fmt: skip
def test_format_round_trips(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
    assert parse_duration(text) == seconds
