"""``Worker``: one consumer of the group, one loop per partition, graceful drain."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from writebehind.core.backoff import Backoff
from writebehind.core.deployment import record_partition_count
from writebehind.core.errors import ConfigurationError
from writebehind.core.redis_checks import inspect_redis
from writebehind.core.redis_client import socket_timeout, verify_read_timeout
from writebehind.core.replies import is_transient
from writebehind.observability.gauges import refresh_partition_gauges
from writebehind.observability.http import HealthEndpoints, serve
from writebehind.observability.metrics import WorkerMetrics
from writebehind.settings import named
from writebehind.sink.bulk import MongoSink
from writebehind.sink.classify import ErrorInfo
from writebehind.worker.concurrency import batch_limit
from writebehind.worker.counters import WorkerCounters
from writebehind.worker.outage import Kind, OutageTracker
from writebehind.worker.processor import BatchProcessor
from writebehind.worker.settings import WorkerSettings
from writebehind.worker.slots import BatchSlots
from writebehind.worker.startup import check_write_concern, unavailable_server
from writebehind.worker.stream import Entry, PartitionStreams

log = structlog.get_logger("writebehind.worker")


class Worker:
    """Moves change records from the partition streams into MongoDB.

    Embeddable: ``await Worker(redis, database, settings).run()`` until
    ``request_stop()``; the CLI adds signal handling. Many workers, in one or
    many processes and hosts, share the streams through one consumer group.

    Making one does no IO and raises nothing (``settings`` were checked when made:
    ``ConfigurationError``); ``startup_checks()`` and ``run()`` say what they raise.
    """

    def __init__(self, redis: Redis, database: Any, settings: WorkerSettings | None = None) -> None:
        self.settings = settings or WorkerSettings()
        self.keys = self.settings.keys
        self.redis = redis
        self.stats = WorkerCounters()
        self.streams = PartitionStreams(redis, self.settings, self.stats, self.keys)
        self.sink = MongoSink(
            database,
            write_concern=WriteConcern(
                w=self.settings.write_concern_w, j=self.settings.write_concern_j
            ),
            tombstone_grace=dt.timedelta(seconds=self.settings.tombstone_grace),
            hard_deletes=self.settings.hard_deletes,
            prefix=self.keys.prefix,
        )
        self.metrics = WorkerMetrics(self.stats)
        self.sink.on_bulk_write = self.metrics.bulk_write_seconds.observe
        self.processor = BatchProcessor(
            self.streams, self.sink, self.settings, self.stats, self.keys
        )
        self.processor.on_progress = self._beat
        self.processor.on_attempt = self._on_write_attempt
        self.outage = OutageTracker(self.settings.outage_report_interval)
        self._created = time.monotonic()
        self.metrics.last_write_age.set_function(self._last_write_age)
        self.metrics.outage.set_function(lambda: self.outage.failing_for(time.monotonic()))
        self.waiting_for: str | None = None
        """While start-up waits: which server, and why (``/readyz`` says it)."""
        self.database = database
        self._beats: dict[int, float] = {}
        self.metrics_port: int | None = None
        """The port /metrics is served on, once started (useful with port 0)."""
        self._stopping = anyio.Event()
        self._started = anyio.Event()
        limit = batch_limit(
            self.settings.concurrency, self.settings.max_concurrency, self.settings.batch_size
        )
        self.slots = BatchSlots(limit)
        """Batches in flight to MongoDB: ``--concurrency``, else an adaptive limit."""
        self._cancel: anyio.CancelScope | None = None
        self.forced = False
        self.drain_expired = False
        """True once ``drain_timeout`` passed with batches still in flight (they stay pending)."""
        self.log = log.bind(consumer=self.settings.consumer)

    @property
    def started(self) -> anyio.Event:
        """Set once start-up checks passed and the partition loops run."""
        return self._started

    def request_stop(self) -> None:
        """Stop reading and drain: in-flight batches finish, within ``drain_timeout``."""
        self._stopping.set()

    def force_stop(self) -> None:
        """Stop now: nothing unsaved is acknowledged; it stays pending for others."""
        self.forced = True
        self._stopping.set()
        if self._cancel is not None:
            self._cancel.cancel()

    async def startup_checks(self) -> None:
        """Everything the worker checks before it reads: Redis, MongoDB, the deployment.

        Raises ``ConfigurationError`` for what waiting cannot fix, and the drivers'
        errors for a server that does not answer (``wait_for_servers`` retries those).
        """
        verify_read_timeout(self.redis, self.settings.read_block_ms)
        if socket_timeout(self.redis) is None:
            # A connection that silently stops answering would block this worker for ever.
            self.log.warning("redis_without_socket_timeout")
        report = await inspect_redis(self.redis)
        for warning in report.warnings:
            self.log.warning("redis_config", problem=warning)
        await record_partition_count(self.redis, self.keys)
        for partition in range(self.keys.partitions):
            await self.streams.ensure_group(partition)
        await check_write_concern(self.database, self.sink.write_concern)

    async def wait_for_servers(self) -> bool:
        """``startup_checks`` until they pass, waiting out servers that do not answer yet.

        One log line per attempt, capped exponential backoff. Returns False if a
        stop was requested meanwhile. Raises what waiting cannot fix.
        """
        backoff = Backoff(self.settings.backoff_base, max(self.settings.backoff_cap, 1.0))
        attempt = 0
        while not self._stopping.is_set():
            attempt += 1
            try:
                await self.startup_checks()
                self.waiting_for = None
                return True
            except Exception as exc:
                server = unavailable_server(exc)
                if server is None:
                    raise
                error = f"{type(exc).__name__}: {exc}"
            delay = backoff.next_delay()
            self.waiting_for = f"waiting for {server}: {error}"[:300]
            self.log.warning(
                f"waiting_for_{server}",
                attempt=attempt,
                error=error[:300],
                retry_in=round(delay, 2),
            )
            with anyio.move_on_after(delay):
                await self._stopping.wait()
        return False

    async def run(self, *, handle_signals: bool = False) -> None:
        """Serve ``/healthz``, wait for the servers, then consume until stopped and drained.

        Raises ``ConfigurationError`` for what waiting cannot fix (the metrics port
        taken, an ``allkeys-*`` eviction policy, another partition count, a write
        concern MongoDB refuses), and the drivers' errors that are not outages
        (such as a wrong password).
        """
        startup_error: Exception | None = None
        with anyio.CancelScope() as scope:
            self._cancel = scope
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    # Before the checks: a signal during start-up is a clean stop too.
                    tg.start_soon(self._watch_signals, tg.cancel_scope)
                ready = False
                try:
                    await self._serve_http(tg)
                    ready = await self.wait_for_servers()
                except Exception as exc:  # re-raised bare below, not in an ExceptionGroup
                    startup_error = exc
                if not ready:
                    tg.cancel_scope.cancel()
                else:
                    await self._serve(tg)
        if startup_error is not None:
            raise startup_error
        self.log.info("worker_stopped", forced=self.forced, **self.stats.as_dict())

    def _beat(self, partition: int) -> None:
        self._beats[partition] = anyio.current_time()

    async def healthy(self) -> tuple[bool, str]:
        """Liveness: every partition loop made progress within ``liveness_timeout``."""
        if not self._started.is_set():
            return True, "starting"
        now = anyio.current_time()
        stuck = [
            p for p in range(self.keys.partitions)
            if now - self._beats.get(p, now) > self.settings.liveness_timeout
        ]  # fmt: skip
        if stuck:
            return False, f"no progress on partitions {stuck}"
        return True, "ok"

    async def ready(self) -> tuple[bool, str]:
        """Readiness: started, and Redis and MongoDB both answer within two seconds."""
        if not self._started.is_set():
            return False, self.waiting_for or "starting"
        problems = []
        try:
            await asyncio.wait_for(self.redis.ping(), timeout=2.0)
        except Exception as exc:
            problems.append(f"redis: {type(exc).__name__}")
        try:
            # asyncio.wait_for, not an anyio scope: PyMongo needs a one-shot cancel.
            await asyncio.wait_for(self.database.command("ping"), timeout=2.0)
        except Exception as exc:
            problems.append(f"mongodb: {type(exc).__name__}")
        return (False, "; ".join(problems)) if problems else (True, "ok")

    async def _serve_http(self, tg: TaskGroup) -> None:
        """/metrics, /healthz and /readyz, from before the servers answer."""
        address = self.settings.metrics_address
        if not address:
            return
        endpoints = HealthEndpoints(self.metrics.registry, self.healthy, self.ready)
        try:
            self.metrics_port = await tg.start(serve, address, endpoints)
        except OSError as exc:
            raise ConfigurationError(
                f"{named('metrics_address')}: cannot listen on {address}: "
                f"{exc.strerror or exc} (another worker on this host? give each its own "
                "port, or 'off')"
            ) from None

    def _on_write_attempt(self, partition: int, error: ErrorInfo | None, waiting: int) -> None:
        now = time.monotonic()
        if error is None:
            notice = self.outage.succeeded(now, partition)
        else:
            notice = self.outage.failed(now, partition, error.message[:300], waiting)
        if notice is None:
            return
        log_at = self.log.info if notice.kind is Kind.ENDED else self.log.warning
        log_at(
            notice.kind.value,
            mongo=self.mongo_address,
            error=notice.error,
            code=error.code if error is not None else None,
            records_waiting=notice.waiting,
            failing_for=round(notice.failing_for, 1),
            attempts=notice.attempts,
        )

    def _last_write_age(self) -> float:
        since = self.outage.last_success
        return max(0.0, time.monotonic() - (self._created if since is None else since))

    @property
    def mongo_address(self) -> str:
        """The MongoDB servers this worker writes to (host:port, never credentials)."""
        try:
            servers = self.database.client.topology_description.server_descriptions()
            return ",".join(f"{host}:{port}" for host, port in servers) or "?"
        except Exception:  # a Motor or test double without a topology: not worth failing for
            return "?"

    async def _serve(self, tg: TaskGroup) -> None:
        self.metrics.started.set_to_current_time()
        tg.start_soon(self._refresh_gauges)
        self.log.info(
            "worker_started",
            partitions=self.keys.partitions,
            group=self.settings.group,
            prefix=self.settings.prefix,
        )
        tg.start_soon(self._drain_deadline, tg.cancel_scope)
        async with anyio.create_task_group() as loops:
            for partition in range(self.keys.partitions):
                loops.start_soon(self._partition_loop, partition)
            self._started.set()
        tg.cancel_scope.cancel()

    async def _watch_signals(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if self._stopping.is_set():
                    self.log.warning("second_signal_exiting_now", signal=signum)
                    self.force_stop()
                    return
                self.log.info("draining", signal=signum, timeout=self.settings.drain_timeout)
                self.request_stop()

    async def _refresh_gauges(self) -> None:
        while True:
            try:
                await refresh_partition_gauges(
                    self.metrics, self.redis, self.keys, self.settings.group
                )
            except Exception as exc:  # metrics must never take the worker down
                self.log.warning("gauge_refresh_failed", error=str(exc))
            await anyio.sleep(self.settings.gauge_interval)

    async def _drain_deadline(self, scope: anyio.CancelScope) -> None:
        await self._stopping.wait()
        await anyio.sleep(self.settings.drain_timeout)
        self.drain_expired = True
        self.log.warning("drain_timeout_reached", timeout=self.settings.drain_timeout)
        scope.cancel()

    async def _partition_loop(self, partition: int) -> None:
        # Every log line of this task and its children names consumer and partition.
        with structlog.contextvars.bound_contextvars(
            consumer=self.settings.consumer, partition=partition
        ):
            await self._consume(partition)

    async def _consume(self, partition: int) -> None:
        plog = self.log.bind(partition=partition)
        self._beat(partition)
        backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap)
        next_claim = anyio.current_time()
        next_trim = anyio.current_time() + self.settings.trim_interval
        while not self._stopping.is_set():
            self._beat(partition)
            try:
                now = anyio.current_time()
                if now >= next_claim:
                    await self._claim_round(partition)
                    next_claim = now + self.settings.claim_interval
                if now >= next_trim:
                    await self._housekeeping(partition)
                    next_trim = now + self.settings.trim_interval
                entries = await self._read_batch(partition)
                if entries:
                    self.metrics.batch_size.observe(len(entries))
                    async with self.slots.slot(len(entries)):
                        await self.processor.process(partition, entries)
                backoff.reset()
            except Exception as exc:
                delay = backoff.next_delay()
                if is_transient(exc):
                    plog.warning("redis_unavailable", error=str(exc), delay=round(delay, 3))
                else:
                    plog.exception("partition_loop_error", delay=round(delay, 3))
                await anyio.sleep(delay)

    async def _read_batch(self, partition: int) -> list[Entry]:
        """Up to ``batch_size`` records: block for the first, then linger for more."""
        size = self.settings.batch_size
        entries = await self.streams.read(partition, size, self.settings.read_block_ms)
        if not entries or len(entries) >= size or self.settings.linger_ms <= 0:
            return entries
        deadline = anyio.current_time() + self.settings.linger_ms / 1000
        while len(entries) < size and not self._stopping.is_set():
            remaining_ms = int((deadline - anyio.current_time()) * 1000)
            if remaining_ms <= 0:
                break
            more = await self.streams.read(partition, size - len(entries), remaining_ms)
            if not more:
                break
            entries.extend(more)
        return entries

    async def _claim_round(self, partition: int) -> None:
        """Take over entries left pending by crashed or frozen consumers, cursor to the end."""
        cursor = "0-0"
        while not self._stopping.is_set():
            cursor, entries = await self.streams.claim(partition, cursor, self.settings.batch_size)
            if entries:
                counts = await self.streams.delivery_counts(partition, [e[0] for e in entries])
                self.log.info("entries_claimed", partition=partition, count=len(entries))
                async with self.slots.slot(len(entries)):
                    await self.processor.process(partition, entries, counts)
            if cursor == "0-0":
                return

    async def _housekeeping(self, partition: int) -> None:
        trimmed = await self.streams.trim(partition)
        if trimmed.removed:
            self.log.debug("stream_trimmed", partition=partition, removed=trimmed.removed)
        if trimmed.held_by is not None:
            # Not ours to move on, but the stream grows until it does: say so.
            self.log.warning(
                "trim_held_back",
                partition=partition,
                group=trimmed.held_by,
                hint="another consumer group has entries older than the retention unread "
                "or unacknowledged; destroy it if it is abandoned",
            )
        await self.streams.prune_consumers(partition)
