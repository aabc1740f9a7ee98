"""The range a replay covers, and what the streams still hold of it (no IO).

SINCE and UNTIL are either an ISO-8601 time or a stream entry id:

- ``2024-06-10T12:00:00Z``, ``2024-06-10T14:00:00+02:00``, ``2024-06-10 12:00``,
  ``2024-06-10``: a time; without a timezone it is UTC. Times resolve to the
  millisecond, the resolution of stream ids.
- ``1718020800000-3``: an exact stream entry id.
- ``1718020800000``: a millisecond id without a sequence number. As SINCE it
  means the first entry of that millisecond (``-0``); as UNTIL, the last one.
  A bare number is always read as milliseconds since the epoch, never as a
  compact date.

Both ends are inclusive, like ``XRANGE``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from writebehind.core.errors import BoundError as BoundError  # re-exported: its old home
from writebehind.core.version import ZERO, Version

END_SEQ = 2**63 - 1
"""The sequence number an UNTIL bound without one gets: every entry of that millisecond."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)
_ID_RE = re.compile(r"(\d+)(?:-(\d+))?")
_MAX = 2**63 - 1


def parse_bound(text: str, *, end: bool = False) -> Version:
    """Parse SINCE (``end=False``) or UNTIL (``end=True``) into a stream id.

    Raises:
        BoundError: neither an ISO-8601 time nor a stream entry id, or out of range.
    """
    value = text.strip()
    if not value:
        raise BoundError("empty value: give an ISO-8601 time or a stream entry id")
    match = _ID_RE.fullmatch(value)
    if match:
        ms = int(match[1])
        seq = int(match[2]) if match[2] is not None else (END_SEQ if end else 0)
        if ms > _MAX or seq > _MAX:
            raise BoundError(f"stream entry id out of range: {text!r}")
        return Version(ms, seq)
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BoundError(
            f"{text!r} is neither an ISO-8601 time (e.g. 2024-06-10T12:00:00Z) "
            "nor a stream entry id (e.g. 1718020800000-0)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    ms = (when - _EPOCH) // _ONE_MS
    if ms < 0:
        raise BoundError(f"{text!r} is before 1970-01-01T00:00:00Z")
    return Version(ms, END_SEQ if end else 0)


@dataclass(frozen=True, slots=True)
class ReplayRange:
    """Inclusive stream-id bounds; ``until=None`` means each stream's end when replay starts."""

    since: Version
    until: Version | None = None

    def __post_init__(self) -> None:
        if self.until is not None and self.until < self.since:
            raise BoundError(
                f"UNTIL ({describe(self.until)}) is before SINCE ({describe(self.since)})"
            )

    @classmethod
    def parse(cls, since: str, until: str | None = None) -> ReplayRange:
        return cls(parse_bound(since), None if until is None else parse_bound(until, end=True))


def iso(ms: int) -> str:
    """``2024-06-10T12:00:00.000Z`` for a stream id's milliseconds."""
    when = _EPOCH + dt.timedelta(milliseconds=ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def describe(version: Version) -> str:
    """A bound for people: its time and the stream id it stands for."""
    seq = "*" if version.seq == END_SEQ else str(version.seq)
    return f"{iso(version.ms)} ({version.ms}-{seq})"


# -- retained history ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamHistory:
    """What ``XINFO STREAM`` says about one partition stream."""

    partition: int
    exists: bool
    length: int = 0
    first_id: Version | None = None
    last_id: Version | None = None
    last_generated: Version | None = None
    max_deleted: Version | None = None
    """Highest id removed by ``XDEL`` (Redis 7.0 does not move it on ``XTRIM``)."""
    entries_added: int | None = None
    """Every entry ever added (Redis 7); more than ``length`` means some were removed."""

    @property
    def removed_some(self) -> bool:
        return self.entries_added is not None and self.entries_added > self.length

    @property
    def end(self) -> Version | None:
        """The last id a replay of this stream may read when no UNTIL is given."""
        return self.last_generated or self.last_id


@dataclass(frozen=True, slots=True)
class Gap:
    """Records at or after SINCE that are gone from one partition stream."""

    partition: int
    resume_from: Version
    """The oldest id the stream can replay from without a gap."""
    retained_from: Version | None
    """The stream's first entry (``None``: nothing is left in it)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "resume_from": str(self.resume_from),
            "resume_from_time": iso(self.resume_from.ms),
            "retained_from": None if self.retained_from is None else str(self.retained_from),
        }


def find_gap(history: StreamHistory, since: Version) -> Gap | None:
    """Whether records at or after ``since`` may have been removed from the stream.

    Trimming (``XTRIM MINID``) removes the oldest entries: when the stream has
    lost entries and ``since`` is older than its first entry, the entries
    between them may be gone. ``XDEL`` can remove any entry; Redis records the
    highest such id. Either way we cannot tell which records are missing, so
    any doubt counts as a gap.
    """
    if not history.exists:
        return None
    first = history.first_id
    if first is None:
        # Empty: everything it ever held was removed (or it never held anything).
        last = history.end
        if history.removed_some and last is not None and since <= last:
            return Gap(history.partition, Version(last.ms, last.seq + 1), None)
        return None
    trimmed = history.removed_some and since < first
    deleted = (
        history.max_deleted is not None
        and history.max_deleted != ZERO
        and since <= history.max_deleted
    )
    if not trimmed and not deleted:
        return None
    resume = first
    if deleted and history.max_deleted is not None and history.max_deleted >= first:
        resume = Version(history.max_deleted.ms, history.max_deleted.seq + 1)
    return Gap(history.partition, resume, first)


def estimate_records(history: StreamHistory, since: Version, until: Version | None) -> int:
    """Roughly how many entries ``[since, until]`` holds, assuming an even rate over time.

    Exact when the range covers the whole stream; only for progress display.
    """
    first, last = history.first_id, history.last_id
    if not history.exists or history.length == 0 or first is None or last is None:
        return 0
    low = max(since, first)
    high = last if until is None else min(until, last)
    if high < low:
        return 0
    if low == first and high == last:
        return history.length
    span = last.ms - first.ms + 1
    share = (high.ms - low.ms + 1) / span
    return max(1, min(history.length, round(history.length * share)))
