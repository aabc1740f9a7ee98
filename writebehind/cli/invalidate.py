"""``writebehind invalidate``: evict cache entries of documents written to MongoDB directly."""

from __future__ import annotations

import signal
from typing import Any

import anyio
import click
from prometheus_client import CollectorRegistry

from writebehind.cli.common import Connection, connection_options, open_clients
from writebehind.cli.tools import run_tool, verified_keys
from writebehind.core.errors import WriteBehindError
from writebehind.core.keys import validate_collection_name
from writebehind.observability.http import HealthEndpoints, parse_address, serve
from writebehind.tools.invalidation.daemon import Invalidator


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
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds an eviction marker fences off older fills; keep readers' lock_timeout under it.",
)
@click.option(
    "--metrics-address",
    default="off",
    show_default=True,
    help="host:port serving /metrics (the invalidator's own registry), or off.",
)
def invalidate(**options: Any) -> None:
    """Follow MongoDB change streams; evict the clean cache entries (and near caches) of
    documents changed by anything but writebehind. Resumes from its token in Redis."""
    # Taken first: the settings model has a metrics_address (the worker's), and
    # Connection.pop_from takes every settings flag it knows.
    address: str = options.pop("metrics_address")
    conn = Connection.pop_from(options)
    collections: tuple[str, ...] = options["collections"]
    try:
        for name in collections:
            validate_collection_name(name)
    except WriteBehindError as exc:
        raise click.UsageError(f"--collection: {exc}") from None
    fence_ttl: float = options["fence_ttl"]
    if not fence_ttl > 0:
        raise click.UsageError(f"--fence-ttl must be > 0 seconds: {fence_ttl!r}")
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
        keys = await verified_keys(redis, conn)
        registry = CollectorRegistry()
        invalidator = Invalidator(
            redis, database, keys, collections, fence_ttl=fence_ttl, registry=registry
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(invalidator.run)
            if metrics is not None:
                endpoints = HealthEndpoints(registry, _always, _always)
                await tg.start(serve, metrics, endpoints)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    break


async def _always() -> tuple[bool, str]:
    return True, "ok"
