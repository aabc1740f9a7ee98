"""``writebehind invalidate``: evict cache entries of documents written to MongoDB directly."""

from __future__ import annotations

import signal
from typing import Any

import anyio
import click
import structlog
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from writebehind.cli.common import Connection, connection_options, duration_callback, open_clients
from writebehind.cli.tools import run_tool, verified_keys
from writebehind.core.backoff import Backoff, retry
from writebehind.core.errors import WriteBehindError
from writebehind.core.keys import validate_collection_name
from writebehind.observability.http import HealthEndpoints, parse_address, serve
from writebehind.tools.invalidation.daemon import Invalidator
from writebehind.worker.startup import unavailable_server

log = structlog.get_logger("writebehind.invalidator")


@click.command()
@connection_options
@click.option(
    "--collection",
    "collections",
    multiple=True,
    help="A collection to watch (repeat for more). Default: every collection of the database.",
)
@click.option(
    "--fence-ttl",
    default="60s",
    show_default=True,
    metavar="DURATION",
    callback=duration_callback(positive=True),
    help="How long an eviction marker fences off older fills; keep readers' lock_timeout under it.",
)
@click.option(
    "--metrics-address",
    "metrics_at",
    default="off",
    show_default=True,
    help="host:port serving /metrics (the invalidator's own registry), or off.",
)
def invalidate(**options: Any) -> None:
    """Follow MongoDB change streams; evict the clean cache entries (and near caches) of
    documents changed by anything but writebehind. Resumes from its token in Redis."""
    conn = Connection.pop_from(options, interactive=False)  # a daemon: JSON logs when piped
    collections: tuple[str, ...] = options["collections"]
    try:
        for name in collections:
            validate_collection_name(name)
    except WriteBehindError as exc:
        raise click.UsageError(f"--collection: {exc}") from None
    fence_ttl: float = options["fence_ttl"]
    # Its own name: the settings model's metrics_address is the worker's, and
    # Connection.pop_from takes every settings flag it knows.
    address: str = options["metrics_at"]
    metrics = None if address.lower() == "off" else address
    if metrics is not None:
        try:
            parse_address(metrics)
        except ValueError as exc:
            raise click.UsageError(f"--metrics-address: {exc}") from None
    run_tool(conn, _run, conn, collections, fence_ttl, metrics)


async def _run(
    conn: Connection, collections: tuple[str, ...], fence_ttl: float, metrics: str | None
) -> None:
    async with open_clients(conn) as (redis, database):
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_invalidate, redis, database, conn, collections, fence_ttl, metrics)
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    break


async def _invalidate(
    redis: Redis,
    database: Any,
    conn: Connection,
    collections: tuple[str, ...],
    fence_ttl: float,
    metrics: str | None,
) -> None:
    # A daemon waits for a Redis that is not up yet (compose, Kubernetes), as the worker
    # does; a wrong password or partition count is not waited out.
    keys = await retry(
        lambda: verified_keys(redis, conn),
        transient=lambda exc: unavailable_server(exc) == "redis",
        backoff=Backoff(base=0.1, cap=1.0),
        on_retry=_waiting_for_redis,
    )
    registry = CollectorRegistry()
    invalidator = Invalidator(
        redis, database, keys, collections, fence_ttl=fence_ttl, registry=registry
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(invalidator.run)
        if metrics is not None:
            endpoints = HealthEndpoints(registry, _always, _always)
            try:
                await tg.start(serve, metrics, endpoints)
            except OSError as exc:  # exit status 1, as the worker's
                raise click.ClickException(
                    f"--metrics-address: cannot listen on {metrics}: {exc.strerror or exc} "
                    "(another process on this host has the port? give another one, or 'off')"
                ) from None


def _waiting_for_redis(exc: BaseException, delay: float) -> None:
    error = f"{type(exc).__name__}: {exc}"[:300]
    log.warning("waiting_for_redis", error=error, retry_in=round(delay, 2))


async def _always() -> tuple[bool, str]:
    return True, "ok"
