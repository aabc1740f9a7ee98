"""Capped exponential backoff with jitter (no IO)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays for the n-th failure in a row: ``uniform(c / 2, c)``, ``c = min(cap, base * 2**n)``.

    The jitter keeps a fleet of workers from retrying a recovering MongoDB in
    lockstep; the floor of ``c / 2`` keeps a retry storm from forming at 0.
    ``reset()`` after a success.
    """

    base: float = 0.05
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.failures, 62)))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
