"""In-process counters of what a worker did; the metrics endpoint and tests read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class WorkerCounters:
    read: int = 0
    """Records delivered to this worker (fresh or claimed)."""
    persisted: int = 0
    """Records acknowledged after MongoDB confirmed them (including coalesced ones)."""
    coalesced: int = 0
    """Records superseded by a newer record of the same document in the same batch."""
    dead_lettered: int = 0
    retried: int = 0
    """Record writes retried after a transient failure."""
    claimed: int = 0
    deleted_while_pending: int = 0
    """Pending ids whose entries were gone from the stream when claimed."""
    group_recreated: int = 0
    left_for_new_primary: int = 0
    """Records of batches left pending unwritten: the Redis primary they were read from was
    replaced before they were written (``core.witness``)."""
    trimmed: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
