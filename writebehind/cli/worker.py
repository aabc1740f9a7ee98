"""``writebehind worker``."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import click
import structlog

from ..errors import ConfigurationError
from ..logs import redact_url
from ..observability.http import parse_address
from ..worker.runner import Worker
from ..worker.settings import WorkerSettings
from .common import Connection, connection_options, env, open_clients


@click.command()
@connection_options
@click.option("--consumer", envvar=env("CONSUMER"), default=None, help="Default: host-pid-random.")
@click.option("--concurrency", envvar=env("CONCURRENCY"), default=4, show_default=True, type=int)
@click.option("--batch-size", envvar=env("BATCH_SIZE"), default=500, show_default=True, type=int)
@click.option("--linger-ms", envvar=env("LINGER_MS"), default=5, show_default=True, type=int)
@click.option(
    "--drain-timeout", envvar=env("DRAIN_TIMEOUT"), default=30.0, show_default=True, type=float
)
@click.option(
    "--claim-idle-ms", envvar=env("CLAIM_IDLE_MS"), default=60_000, show_default=True, type=int
)
@click.option(
    "--max-deliveries", envvar=env("MAX_DELIVERIES"), default=10, show_default=True, type=int
)
@click.option(
    "--retention", envvar=env("RETENTION"), default=86400.0, show_default=True, type=float,
    help="Seconds acknowledged records stay in the stream for replay.",
)  # fmt: skip
@click.option("--clean-ttl", envvar=env("CLEAN_TTL"), default=3600, show_default=True, type=int)
@click.option(
    "--tombstone-grace", envvar=env("TOMBSTONE_GRACE"), default=7 * 86400.0,
    show_default=True, type=float,
)  # fmt: skip
@click.option("--hard-deletes/--tombstones", envvar=env("HARD_DELETES"), default=False)
@click.option(
    "--write-concern", envvar=env("WRITE_CONCERN"), default="1", show_default=True,
    help="MongoDB w: a number or 'majority'. The journal is always waited for.",
)  # fmt: skip
@click.option(
    "--metrics-address", envvar=env("METRICS_ADDRESS"), default="127.0.0.1:9108",
    show_default=True, help="host:port for /metrics, /healthz, /readyz; 'off' to disable.",
)  # fmt: skip
def worker(**options: Any) -> None:
    """Move change records from Redis into MongoDB until SIGTERM (then drain)."""
    conn = Connection.pop_from(options)
    w = options.pop("write_concern")
    address = options.pop("metrics_address")
    if address and address.lower() != "off":
        try:
            parse_address(address)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--metrics-address") from None
        options["metrics_address"] = address
    consumer = options.pop("consumer")
    try:
        settings = WorkerSettings(
            prefix=conn.prefix,
            partitions=conn.partitions,
            group=conn.group,
            write_concern_w=int(w) if w.isdigit() else w,
            **options,
            **({"consumer": consumer} if consumer else {}),
        )
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    forced = anyio.run(_run_worker, conn, settings)
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
