"""The bounded in-process journal of invalidations Redis did not take (no IO).

With ``WriteBehind(journal=True)``, an ``invalidate``, ``invalidate_tags`` or
``bump_namespace`` made while Redis is unavailable is kept here instead of
raising ``CacheUnavailable``. It is applied to Redis before any computed value
is served from Redis again; until then the calls it covers are computed fresh.
A journal that overflowed covers every call: it is then applied by bumping
the global generation, which makes every computed value stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from writebehind.core.errors import ConfigurationError

Kind = Literal["key", "tag", "namespace"]

DEFAULT_LIMIT = 10_000
"""Invalidations the journal holds before it overflows."""


@dataclass(frozen=True, slots=True)
class Invalidation:
    """One invalidation: of a computed entry (its Redis key), a tag or a namespace."""

    kind: Kind
    name: str


@dataclass(frozen=True, slots=True)
class Pending:
    """What to apply: the invalidations, and whether the journal had overflowed."""

    items: tuple[Invalidation, ...]
    overflowed: bool
    overflows: int


class Journal:
    """Up to ``limit`` distinct invalidations, oldest first; past it, ``overflowed``."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if type(limit) is not int or limit < 1:
            raise ConfigurationError(f"the journal limit must be an int >= 1: {limit!r}")
        self.limit = limit
        self._items: dict[Invalidation, None] = {}
        self._overflows = 0
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def empty(self) -> bool:
        return not self._items and not self.overflowed

    def add(self, item: Invalidation) -> None:
        """Keep ``item`` (once); a full journal overflows instead."""
        if item in self._items:
            return
        if len(self._items) >= self.limit:
            self.overflowed = True
            self._overflows += 1
            return
        self._items[item] = None

    def covers(self, entry: str, tags: Iterable[str], namespace: str) -> bool:
        """Whether a call with this entry key, tags and namespace must be computed fresh."""
        if self.overflowed:
            return True
        if not self._items:
            return False
        wanted = [Invalidation("key", entry), Invalidation("namespace", namespace)]
        wanted += [Invalidation("tag", tag) for tag in tags]
        return any(item in self._items for item in wanted)

    def pending(self) -> Pending:
        return Pending(tuple(self._items), self.overflowed, self._overflows)

    def applied(self, pending: Pending) -> None:
        """``pending`` is in Redis now: forget it (what was added since stays)."""
        for item in pending.items:
            self._items.pop(item, None)
        if pending.overflowed and self._overflows == pending.overflows:
            self.overflowed = False
