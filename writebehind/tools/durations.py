"""Durations for people, in the two forms the tools print (no IO).

``clock`` for a progress line's ETA (``1:02:03``), ``compact`` for tables of
ages and idle times (``3m05s``). Both take seconds.
"""

from __future__ import annotations

_CLOCK_LIMIT = 360_000
"""100 hours: an ETA beyond this says nothing useful."""


def _parts(whole: int) -> tuple[int, int, int, int]:
    """Days, hours, minutes and seconds of ``whole`` seconds."""
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return days, hours, minutes, secs


def clock(seconds: float | None) -> str:
    """``0:07``, ``12:34``, ``1:02:03``; ``--:--`` when unknown, negative or over 100 hours."""
    if seconds is None or seconds != seconds or seconds < 0 or seconds > _CLOCK_LIMIT:
        return "--:--"
    days, hours, minutes, secs = _parts(round(seconds))
    hours += 24 * days
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def compact(seconds: float | None) -> str:
    """``0.4s``, ``12.0s``, ``3m05s``, ``2h03m``, ``4d02h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    days, hours, minutes, secs = _parts(int(seconds))
    if not days and not hours:
        return f"{minutes}m{secs:02d}s"
    if not days:
        return f"{hours}h{minutes:02d}m"
    return f"{days}d{hours:02d}h"
