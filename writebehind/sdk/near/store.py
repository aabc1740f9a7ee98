"""The near cache's bounded store, with version-aware puts (no IO).

Each document is kept with the version it was read at, for at most ``ttl``
seconds and among at most ``max_entries`` (least recently read go first).

The reply/invalidation race: a read that goes to Redis takes a ``Ticket``
before it sends the command. Every eviction the feed (or an own write)
applies while the ticket is open is recorded on it: a write's version, or an
invalidation without a version (a direct MongoDB write). The reply is then
stored only if it is at least as new as every write seen meanwhile and no
invalidation came: a reply that left Redis before a write can never be stored
after that write's eviction, the race that leaves other near caches stale.

Nor is a reply stored that may predate the feed's own starting point: the
store accepts replies only from reads that began after the feed took its
position in the streams (``positioned``), and after each time it had to take
a new one (a start, or a resync after trimming), since a write made between
such a read and the new position would never reach the store.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from writebehind.core.version import Version

Evicted = Callable[[str, int], None]
"""Told of evictions: (cause, how many). Causes: ttl, size, write, own_write,
invalidation, flush, resync."""


@dataclass(slots=True)
class Held:
    """One document in the near cache: ``doc`` (its BSON, so that no caller can change the
    copy kept) is ``None`` for a deleted or absent one; ``outcome`` how a hit is counted."""

    doc: Any
    version: Version
    expires_at: float
    outcome: str


@dataclass(eq=False, slots=True)
class Ticket:
    """An open read of one key: what the feed evicted while it was in flight."""

    key: str
    epoch: int
    newest_seen: Version | None = None
    invalidated: bool = False


@dataclass(slots=True)
class NearStore:
    """One collection's near cache. Keys are encoded ids (``core.keys.encode_id``)."""

    max_entries: int
    ttl: float
    on_evict: Evicted = lambda cause, n: None
    _held: OrderedDict[str, Held] = field(default_factory=OrderedDict)
    _open: dict[str, list[Ticket]] = field(default_factory=dict)
    _epoch: int = 0
    _live: bool = False

    def positioned(self) -> None:
        """The feed has (re)taken its position: reads that begin from now on may be kept."""
        self._epoch += 1
        self._live = True

    def __len__(self) -> int:
        return len(self._held)

    def get(self, key: str, now: float) -> Held | None:
        held = self._held.get(key)
        if held is None:
            return None
        if now >= held.expires_at:
            del self._held[key]
            self.on_evict("ttl", 1)
            return None
        self._held.move_to_end(key)
        return held

    def begin(self, key: str) -> Ticket:
        ticket = Ticket(key, self._epoch if self._live else -1)
        self._open.setdefault(key, []).append(ticket)
        return ticket

    def end(self, ticket: Ticket) -> None:
        tickets = self._open.get(ticket.key)
        if tickets is None:
            return
        tickets[:] = [t for t in tickets if t is not ticket]
        if not tickets:
            del self._open[ticket.key]

    def put(
        self,
        ticket: Ticket,
        doc: Any,
        version: Version,
        now: float,
        outcome: str = "hit",
    ) -> bool:
        """Store a reply read under ``ticket``, unless the feed saw something newer meanwhile.

        Returns whether it was stored. Never replaces a newer version already held.
        """
        if ticket.invalidated or ticket.epoch != self._epoch or not self._live:
            return False
        if ticket.newest_seen is not None and version < ticket.newest_seen:
            return False
        current = self._held.get(ticket.key)
        if current is not None and current.version > version:
            return False
        self._held[ticket.key] = Held(doc, version, now + self.ttl, outcome)
        self._held.move_to_end(ticket.key)
        while len(self._held) > self.max_entries:
            self._held.popitem(last=False)
            self.on_evict("size", 1)
        return True

    def written(self, key: str, version: Version, cause: str = "write") -> bool:
        """A write of ``key`` at ``version``: evict an older copy. Returns whether one went."""
        for ticket in self._open.get(key, ()):
            if ticket.newest_seen is None or version > ticket.newest_seen:
                ticket.newest_seen = version
        held = self._held.get(key)
        if held is None or held.version >= version:
            return False
        del self._held[key]
        self.on_evict(cause, 1)
        return True

    def invalidated(self, key: str) -> bool:
        """A change made outside writebehind (same version, new body): evict whatever is held."""
        for ticket in self._open.get(key, ()):
            ticket.invalidated = True
        if self._held.pop(key, None) is None:
            return False
        self.on_evict("invalidation", 1)
        return True

    def unpositioned(self) -> None:
        """The feed lost its position: no reply is kept until it is ``positioned`` again."""
        self._live = False

    def clear(self, cause: str) -> int:
        """Empty the store; reads in flight store nothing. Returns how many were dropped."""
        for tickets in self._open.values():
            for ticket in tickets:
                ticket.invalidated = True
        dropped = len(self._held)
        self._held.clear()
        if dropped:
            self.on_evict(cause, dropped)
        return dropped
