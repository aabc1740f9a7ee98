"""Prometheus metrics of a worker, named by Prometheus conventions.

Counters are read from ``WorkerCounters`` at scrape time, so the worker counts
each event once, in one place. Histograms are observed where batches are
written. Per-partition gauges (pending, lag, oldest pending age, dead letters)
are refreshed from Redis by the worker every few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from writebehind.worker.counters import WorkerCounters

_COUNTERS = {
    "read": ("writebehind_records_read", "Records delivered to this worker, fresh or claimed."),
    "persisted": (
        "writebehind_records_persisted",
        "Records acknowledged after MongoDB confirmed them (coalesced ones included).",
    ),
    "coalesced": (
        "writebehind_records_coalesced",
        "Records superseded by a newer record of the same document in the same batch.",
    ),
    "dead_lettered": (
        "writebehind_records_dead_lettered",
        "Records moved to a dead-letter stream.",
    ),
    "retried": ("writebehind_records_retried", "Record writes retried after a transient failure."),
    "claimed": ("writebehind_records_claimed", "Pending records taken over from other consumers."),
    "deleted_while_pending": (
        "writebehind_pending_entries_deleted",
        "Pending entries found deleted from the stream when claimed (lost records).",
    ),
    "group_recreated": (
        "writebehind_consumer_group_recreated",
        "Times a missing consumer group was recreated (NOGROUP).",
    ),
    "left_for_new_primary": (
        "writebehind_records_left_for_new_primary",
        "Records left pending unwritten: their Redis primary was replaced after they were read.",
    ),
    "trimmed": ("writebehind_stream_entries_trimmed", "Acknowledged entries trimmed."),
    "batches": ("writebehind_batches", "Batches processed."),
}


class _StatsCollector(Collector):
    def __init__(self, stats: WorkerCounters) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        values = self.stats.as_dict()
        for field, (name, doc) in _COUNTERS.items():
            family = CounterMetricFamily(name, doc)
            family.add_metric([], values[field])
            yield family


class WorkerMetrics:
    """One worker's metrics, in a registry of its own (several workers may share a process)."""

    def __init__(self, stats: WorkerCounters) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_StatsCollector(stats))
        self.batch_size = Histogram(
            "writebehind_batch_size_records",
            "Records per batch read from a partition.",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
            registry=self.registry,
        )
        self.bulk_write_seconds = Histogram(
            "writebehind_bulk_write_duration_seconds",
            "Duration of one bulk_write to MongoDB, successful or not.",
            registry=self.registry,
        )
        labels = ["partition"]
        self.pending = Gauge(
            "writebehind_pending_entries",
            "Entries delivered to a consumer and not yet acknowledged.",
            labels,
            registry=self.registry,
        )
        self.lag = Gauge(
            "writebehind_lag_entries",
            "Entries not yet delivered to any consumer.",
            labels,
            registry=self.registry,
        )
        self.oldest_pending_age = Gauge(
            "writebehind_oldest_pending_age_seconds",
            "Age of the oldest unacknowledged entry.",
            labels,
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "writebehind_dead_letters",
            "Entries in the dead-letter stream.",
            labels,
            registry=self.registry,
        )
        self.started = Gauge(
            "writebehind_worker_start_time_seconds",
            "Unix time this worker finished its start-up checks (0 while it waits for its "
            "servers); a change means a restart.",
            registry=self.registry,
        )
        self.last_write_age = Gauge(
            "writebehind_last_successful_write_age_seconds",
            "Seconds since a bulk_write last reached MongoDB (since start if none did yet); "
            "grows while idle too, so alert on it together with pending entries.",
            registry=self.registry,
        )
        self.outage = Gauge(
            "writebehind_mongodb_outage_seconds",
            "Seconds MongoDB writes have been failing and retried; 0 when they succeed.",
            registry=self.registry,
        )
