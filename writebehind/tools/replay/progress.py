"""The progress line a replay shows on a terminal (no IO: the caller writes it)."""

from __future__ import annotations

from dataclasses import dataclass

from writebehind.tools.durations import clock as duration

BAR_WIDTH = 24


@dataclass(frozen=True, slots=True)
class Snapshot:
    done: int
    total: int
    """An estimate; never below ``done``."""
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.rate <= 0:
            return None
        return max(0, self.total - self.done) / self.rate


def snapshot(done: int, estimated_total: int, elapsed: float) -> Snapshot:
    return Snapshot(done, max(done, estimated_total), elapsed)


def render(snap: Snapshot, width: int = BAR_WIDTH) -> str:
    """``[#########...........]  1,200/~3,000 records  40%  850/s  ETA 0:02``."""
    fraction = snap.done / snap.total if snap.total else 1.0
    filled = min(width, int(fraction * width))
    bar = "#" * filled + "." * (width - filled)
    return (
        f"[{bar}] {snap.done:,}/~{snap.total:,} records  {fraction * 100:3.0f}%  "
        f"{snap.rate:,.0f}/s  ETA {duration(snap.eta)}"
    )
