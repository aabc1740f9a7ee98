"""The version floor: a bound, kept in MongoDB, above every version MongoDB holds (no IO).

Versions are the Redis primary's stream ids (its clock). A primary that
takes over (a promoted replica, a restarted or restored Redis) may issue ids
below versions already persisted from the one it replaced; the version guard
would then keep the older document. So every writer of versioned documents
(the worker's sink, replay and re-drives through it, write-through) first
raises one small document per deployment, in the same database::

    _writebehind  {_id: "<prefix>:floor", ms: <int>}

with ``$max`` and the data's write concern, and only then writes the data.
Invariant: every version MongoDB holds has ``ms <= floor.ms``. A new primary's
partitions are seeded above it (``seed_id``) before their first write.

To keep it cheap the floor is raised ``MARGIN_MS`` past the batch's newest
version, and not at all while a batch stays under the floor this process last
wrote: about one small update per ``MARGIN_MS`` per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from writebehind.core.errors import InvalidVersion

FLOOR_COLLECTION = "_writebehind"
"""The collection holding the floor document (in the deployment's database)."""

MARGIN_MS = 1_000
"""How far past a batch's newest version the floor is raised (ms): one update covers the
next ``MARGIN_MS`` of versions. Small, because a partition seeded from the floor issues
versions up to this far ahead of the clock: retention trimming (which compares stream ids
with the clock) and time bounds of ``replay --since`` see them that much later. At 10 s a
retention-0 trim was seen held back 10 s after a seeding."""


def floor_id(prefix: str) -> str:
    """The floor document's ``_id`` for a deployment (its key prefix)."""
    return f"{prefix}:floor"


def floor_update(ms: int) -> dict[str, Any]:
    """The ``update_one`` document that raises the floor to ``ms`` (never lowers it: ``$max``)."""
    return {"$max": {"ms": ms}}


def floor_ms(doc: Any) -> int | None:
    """The floor a stored floor document holds (``None``: no document yet).

    Raises ``InvalidVersion`` for a document whose ``ms`` is not an int >= 0
    (edited by hand): seeding below an unknown floor could lose writes.
    """
    if doc is None:
        return None
    ms = doc.get("ms") if isinstance(doc, dict) else None
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
        raise InvalidVersion(f"the version floor document holds no ms >= 0: {doc!r:.200}")
    return ms


def seed_id(floor: int) -> str:
    """The stream id a partition is seeded to: above every version ``(ms <= floor, any seq)``.

    Every later ``XADD *`` issues ids above it (https://redis.io/docs/latest/commands/xadd/).
    """
    return f"{floor + 1}-0"


@dataclass(slots=True)
class FloorTracker:
    """When this process must raise the floor, and to what (one per writer process).

    ``written`` is the floor this process last wrote and MongoDB acknowledged
    (0: none yet). Call ``target`` with a batch's newest ``ms``; if it returns a
    value, raise the floor to it, and only once that was acknowledged call
    ``wrote`` and write the batch.
    """

    margin_ms: int = MARGIN_MS
    written: int = 0

    def target(self, batch_max_ms: int) -> int | None:
        """The floor to raise before writing a batch whose newest version has ``batch_max_ms``,
        or ``None`` when the floor this process wrote already covers it."""
        if batch_max_ms <= self.written:
            return None
        return batch_max_ms + self.margin_ms

    def wrote(self, ms: int) -> None:
        """MongoDB acknowledged a raise to ``ms``."""
        self.written = max(self.written, ms)
