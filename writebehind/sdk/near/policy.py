"""``NearCache``: the bounds of one collection's near cache (no IO)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from writebehind.core.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class NearCache:
    """An in-process cache in front of Redis, for ``ReadPolicy(near=NearCache(...))``.

    Frozen; raises ``ConfigurationError`` when made with a field out of range.

    Attributes:
        max_entries: documents kept at most (least recently read go first).
        ttl: seconds a document is kept after it was stored, whatever happens
            (a hard TTL: reads do not extend it).
        max_stale: seconds the change feed may be behind (or disconnected)
            before the near cache stops being served: a read then goes to
            Redis until the feed has caught up. This bounds how old a value a
            near-cache read can return, after another process's write.
        block: seconds one ``XREAD`` of the feed waits for new records; kept
            under ``max_stale`` (at most half of it is used) so that a quiet,
            healthy feed never counts as behind.
    """

    max_entries: int = 10_000
    ttl: float = 5.0
    max_stale: float = 0.5
    block: float = 0.2

    def __post_init__(self) -> None:
        if type(self.max_entries) is not int or self.max_entries < 1:
            raise ConfigurationError(f"max_entries must be an int >= 1: {self.max_entries!r}")
        for name in ("ttl", "max_stale", "block"):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= 0:
                raise ConfigurationError(f"{name} must be a number of seconds > 0: {value!r}")


def feed_block_ms(near: NearCache) -> int:
    """The feed's ``XREAD BLOCK`` in ms (Redis takes ms): ``block``, never over half of
    ``max_stale``."""
    return max(1, int(min(near.block, near.max_stale / 2) * 1000))
