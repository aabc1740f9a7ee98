"""``writebehind worker``."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import click
import structlog

from writebehind.cli.common import (
    Connection,
    connection_options,
    env,
    open_clients,
    pop_settings,
    setting_option,
)
from writebehind.core.errors import ConfigurationError
from writebehind.observability.http import parse_address
from writebehind.observability.logs import redact_url
from writebehind.settings import Settings
from writebehind.worker.runner import Worker
from writebehind.worker.settings import WorkerSettings

WORKER_FIELDS = (
    "consumer", "concurrency", "batch_size", "linger_ms", "drain_timeout", "claim_idle_ms",
    "max_deliveries", "retention", "clean_ttl", "tombstone_grace", "hard_deletes",
    "write_concern", "metrics_address",
)  # fmt: skip
_TYPES: dict[str, Any] = {
    "concurrency": int, "batch_size": int, "linger_ms": int, "drain_timeout": float,
    "claim_idle_ms": int, "max_deliveries": int, "retention": float, "clean_ttl": int,
    "tombstone_grace": float,
}  # fmt: skip


def _worker_options(func: Any) -> Any:
    for name in reversed(WORKER_FIELDS):
        if name == "hard_deletes":
            func = setting_option(name, "--hard-deletes/--tombstones")(func)
        else:
            func = setting_option(name, type=_TYPES.get(name, str))(func)
    return func


def worker_settings(settings: Settings) -> WorkerSettings:
    """The worker's settings from the command's; errors name the option."""
    address = settings.metrics_address
    metrics = None if not address or address.lower() == "off" else address
    if metrics is not None:
        try:
            parse_address(metrics)
        except ValueError as exc:
            raise click.UsageError(f"--metrics-address ({env('METRICS_ADDRESS')}): {exc}") from None
    values: dict[str, Any] = {
        name: getattr(settings, name)
        for name in WORKER_FIELDS
        if name not in ("consumer", "write_concern", "metrics_address")
    }
    if settings.consumer:
        values["consumer"] = settings.consumer
    try:
        return WorkerSettings(
            prefix=settings.prefix,
            partitions=settings.partitions,
            group=settings.group,
            write_concern_w=settings.w,
            metrics_address=metrics,
            **values,
        )
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None


@click.command()
@connection_options
@_worker_options
def worker(**options: Any) -> None:
    """Move change records from Redis into MongoDB until SIGTERM (then drain).

    Every option can also be set as a WRITEBEHIND_* environment variable or in
    a .env file; flags win.
    """
    settings = pop_settings(options, *WORKER_FIELDS)
    conn = Connection.from_settings(settings)
    forced = anyio.run(_run_worker, conn, worker_settings(settings))
    sys.exit(1 if forced else 0)


async def _run_worker(conn: Connection, settings: WorkerSettings) -> bool:
    structlog.get_logger("writebehind.worker").info(
        "connecting",
        redis=redact_url(conn.redis_url),
        mongo=redact_url(conn.mongo_url),
        database=conn.database,
    )
    async with open_clients(conn, max_connections=settings.partitions + 16) as (redis, db):
        runner = Worker(redis, db, settings)
        try:
            await runner.run(handle_signals=True)
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from None
        return runner.forced
