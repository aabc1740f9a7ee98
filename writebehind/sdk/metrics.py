"""The SDK's own Prometheus metrics, in the application's default registry.

Kept apart from the worker's metrics: importing the SDK must not import the worker.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SDK_READS = Counter(
    "writebehind_sdk_reads",
    "SDK reads and read-side events by collection, level and outcome. Each get() (and "
    "each id of get_many) counts once where its answer came from: level redis (hit, "
    "deleted, negative_hit), mongodb (hit, miss) or degraded (hit, miss: Redis was "
    "unavailable). Events: fill (filled, renewed, skip_<reason>), lease (acquired, wait, "
    "woken, timeout), early_refresh (started, done, failed), breaker (opened, closed).",
    ["collection", "level", "outcome"],
)

SDK_BREAKER_OPEN = Gauge(
    "writebehind_sdk_redis_breaker_open",
    "1 while the SDK's Redis circuit breaker is open (reads go to MongoDB, writes fail fast).",
    ["prefix"],
)

SDK_NEAR_READS = Counter(
    "writebehind_sdk_near_reads",
    "Near-cache (L1) lookups by collection and outcome: hit (answered in the process), "
    "miss (not held: read Redis), stale (held or not, the change feed was behind by more "
    "than max_stale, so Redis was read).",
    ["collection", "outcome"],
)

SDK_NEAR_EVICTIONS = Counter(
    "writebehind_sdk_near_evictions",
    "Documents dropped from near caches, by collection and cause: ttl, size, write "
    "(another process's write, from the change feed), own_write, invalidation (a direct "
    "MongoDB write, from the invalidator), flush (the invalidator emptied the collection), "
    "resync (the feed's position was trimmed away), captured (older than the version a "
    "cached computation captured before running).",
    ["collection", "cause"],
)

SDK_NEAR_RESYNCS = Counter(
    "writebehind_sdk_near_resyncs",
    "Change-feed (re)connections of near caches, by mode: start (first connection), "
    "resume (from the last id applied), empty (that id was trimmed: near caches emptied).",
    ["mode"],
)

SDK_NEAR_FEED_LAG = Gauge(
    "writebehind_sdk_near_feed_lag_seconds",
    "Seconds between the last change-feed record's time (its stream id) and its "
    "application to the near caches of this process; 0 once a read of the feed finds "
    "nothing new (an idle feed is not late).",
)

SDK_NEAR_FEED_CONNECTED = Gauge(
    "writebehind_sdk_near_feed_connected",
    "1 while this process's near-cache change feed is connected to Redis.",
)

SDK_COMPUTED = Counter(
    "writebehind_sdk_computed",
    "Cached computations by function, namespace and outcome. Reads: hit, negative_hit "
    "(a cached None), miss, stale_generation (a tag or namespace was invalidated since), "
    "stale_dependency (a document in depends_on changed, or its cache entry is gone), "
    "stale_shape (stored under other tags or dependencies), undecodable (an entry that is "
    "not the BSON the SDK writes: a miss). Work: computed (the function ran), fill_<outcome> "
    "(filled, lease_lost, stale_generation, stale_dependency, stale_shape), not_stored "
    "(None without negative caching, cache_if refused, a dependency without cache entry), "
    "degraded (Redis unavailable: computed, not stored), journaled (computed fresh: the "
    "journal holds an invalidation for it), lease_wait, lease_timeout, flight_outdated (a "
    "call joined a computation begun before it, whose value Redis did not confirm "
    "current afterwards: computed again), early_refresh, early_refresh_failed. "
    "Invalidations: invalidation (one entry), tag (function and namespace empty), namespace. "
    "generation_reset (function and namespace empty): a generation key held no counter "
    "(another Redis type, or text), was reset, and everything stamped under it is stale.",
    ["function", "namespace", "outcome"],
)

SDK_COMPUTED_JOURNAL = Gauge(
    "writebehind_sdk_computed_journal_depth",
    "Invalidations held because Redis was unavailable (WriteBehind(journal=True)), summed "
    "over this process's open clients of the prefix (each journal counts its distinct "
    "invalidations, at most its limit; a closed client's no longer count); computed values "
    "they cover are computed fresh until applied.",
    ["prefix"],
)
