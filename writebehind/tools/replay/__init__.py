"""Replay: re-apply a range of the retained stream records to MongoDB, safely, any number of times.

``bounds`` and ``progress`` are pure (parsing SINCE/UNTIL, retained-history
checks, the progress line); ``runner`` does the IO.
"""

from __future__ import annotations

from writebehind.core.errors import BoundError, HistoryGapError
from writebehind.tools.replay.bounds import Gap, ReplayRange, StreamHistory, parse_bound
from writebehind.tools.replay.runner import (
    Replayer,
    ReplayOptions,
    ReplayResult,
    replay,
    stream_history,
)

__all__ = [
    "BoundError",
    "Gap",
    "HistoryGapError",
    "ReplayOptions",
    "ReplayRange",
    "ReplayResult",
    "Replayer",
    "StreamHistory",
    "parse_bound",
    "replay",
    "stream_history",
]
