"""Durations as operators write them: ``30``, ``1.5``, ``250ms``, ``30s``, ``5m``, ``2h``, ``7d``.

Every duration setting is in seconds; a bare number is seconds. Units may be
combined largest first (``1h30m``). Pure: no IO, unit-tested.
"""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_ORDER = ["d", "h", "m", "s", "ms"]


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or text: ``500ms``, ``30s``, ``5m``, ``2h``, ``1h30m``.

    Raises ``ValueError`` (with the accepted forms) for anything else; a bool is
    refused, not read as 0 or 1. NaN passes through, for range checks to refuse.
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text such as 30s, 5m, 2h")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or text such as 30s, 5m, 2h")
    text = value.strip().lower()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number) or math.isnan(number):
            return number
    position, total, last_rank = 0, 0.0, -1
    for match in _PART.finditer(text):
        rank = _ORDER.index(match.group(2))
        if match.start() != position or rank <= last_rank:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position, last_rank = match.end(), rank
    else:
        if position == len(text) and position > 0:
            return total
    raise ValueError("not a duration: use seconds (30, 1.5) or 250ms, 30s, 5m, 2h, 7d, 1h30m")


def format_seconds(seconds: float) -> str:
    """The shortest readable form of a duration, for ``--help``: ``5ms``, ``30s``, ``1d``."""
    if seconds == 0:
        return "0s"
    for unit in _ORDER:
        scaled = seconds / _UNITS[unit]
        if scaled >= 1 and scaled == int(scaled):
            return f"{int(scaled)}{unit}"
    return f"{seconds:g}s"
