"""The worker's tunables, validated once at construction."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

from writebehind.core.errors import ConfigurationError
from writebehind.core.keys import KeySpace


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker reads, batches, retries, recovers and trims.

    Times are in seconds unless the name says ``_ms``.
    """

    prefix: str = "wb"
    partitions: int = 16
    group: str = "writebehind"
    consumer: str = field(default_factory=default_consumer_name)
    concurrency: int = 4
    """Batches in flight to MongoDB at once (each partition has at most one)."""
    batch_size: int = 500
    linger_ms: int = 5
    """How long a partly filled batch waits for more records."""
    read_block_ms: int = 500
    drain_timeout: float = 30.0
    claim_idle_ms: int = 60_000
    """Pending entries idle this long on any consumer are claimed (crash recovery)."""
    claim_interval: float = 10.0
    max_deliveries: int = 10
    """Entries delivered more often than this are dead-lettered instead of retried."""
    retention: float = 24 * 3600.0
    """Acknowledged records stay this long in the stream for replay."""
    trim_interval: float = 60.0
    consumer_idle_ms: int = 3600_000
    """Consumers with no pending entries, idle this long, are removed from the group."""
    clean_ttl: int = 3600
    """TTL a cache entry gets once its version is in MongoDB."""
    tombstone_grace: float = 7 * 24 * 3600.0
    hard_deletes: bool = False
    write_concern_w: int | str = 1
    write_concern_j: bool = True
    backoff_base: float = 0.05
    backoff_cap: float = 5.0
    metrics_address: str | None = None
    """``host:port`` for /metrics, /healthz and /readyz; None serves nothing."""
    liveness_timeout: float = 120.0
    """/healthz fails when a partition loop made no progress for this long."""
    gauge_interval: float = 5.0
    """How often pending, lag and dead-letter gauges are refreshed from Redis."""

    def __post_init__(self) -> None:
        KeySpace(self.prefix, self.partitions)
        positive = {
            "concurrency": self.concurrency,
            "batch_size": self.batch_size,
            "read_block_ms": self.read_block_ms,
            "claim_idle_ms": self.claim_idle_ms,
            "claim_interval": self.claim_interval,
            "max_deliveries": self.max_deliveries,
            "trim_interval": self.trim_interval,
            "clean_ttl": self.clean_ttl,
            "backoff_base": self.backoff_base,
            "backoff_cap": self.backoff_cap,
            "liveness_timeout": self.liveness_timeout,
            "gauge_interval": self.gauge_interval,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigurationError(f"{name} must be > 0, got {value!r}")
        non_negative = {
            "linger_ms": self.linger_ms,
            "drain_timeout": self.drain_timeout,
            "retention": self.retention,
            "tombstone_grace": self.tombstone_grace,
            "consumer_idle_ms": self.consumer_idle_ms,
        }
        for name, value in non_negative.items():
            if not value >= 0:
                raise ConfigurationError(f"{name} must be >= 0, got {value!r}")
        if self.batch_size > 10_000:
            raise ConfigurationError("batch_size must be at most 10000")
        if not self.group or not self.consumer:
            raise ConfigurationError("group and consumer names must not be empty")
        if not self.hard_deletes and self.tombstone_grace < self.retention:
            raise ConfigurationError(
                "tombstone_grace must be at least the replay retention, or a replay "
                "could resurrect a deleted document whose tombstone is gone"
            )

    @property
    def keys(self) -> KeySpace:
        return KeySpace(self.prefix, self.partitions)
