"""The ``writebehind`` command line."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import anyio
import click
import structlog

from .errors import ConfigurationError
from .logs import configure_logging, redact_url
from .worker.settings import WorkerSettings


def env(name: str) -> str:
    return f"WRITEBEHIND_{name}"


@click.group()
@click.version_option(package_name="writebehind")
def main() -> None:
    """writebehind: Redis-fronted writes, persisted to MongoDB behind them."""


@main.command()
@click.option("--redis-url", envvar=env("REDIS_URL"), required=True, help="Redis URL.")
@click.option("--mongo-url", envvar=env("MONGO_URL"), required=True, help="MongoDB URL.")
@click.option("--database", envvar=env("DATABASE"), required=True, help="MongoDB database.")
@click.option("--prefix", envvar=env("PREFIX"), default="wb", show_default=True)
@click.option("--partitions", envvar=env("PARTITIONS"), default=16, show_default=True, type=int)
@click.option("--group", envvar=env("GROUP"), default="writebehind", show_default=True)
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
@click.option("--log-level", envvar=env("LOG_LEVEL"), default="info", show_default=True)
@click.option(
    "--log-format", envvar=env("LOG_FORMAT"), default="auto", show_default=True,
    type=click.Choice(["auto", "json", "console"]),
)  # fmt: skip
def worker(**options: Any) -> None:
    """Move change records from Redis into MongoDB until SIGTERM (then drain)."""
    configure_logging(options.pop("log_level"), options.pop("log_format"))
    redis_url = options.pop("redis_url")
    mongo_url = options.pop("mongo_url")
    database = options.pop("database")
    w = options.pop("write_concern")
    consumer = options.pop("consumer")
    try:
        settings = WorkerSettings(
            **options,
            write_concern_w=int(w) if w.isdigit() else w,
            **({"consumer": consumer} if consumer else {}),
        )
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    forced = anyio.run(_run_worker, redis_url, mongo_url, database, settings)
    sys.exit(1 if forced else 0)


async def _run_worker(
    redis_url: str, mongo_url: str, database: str, settings: WorkerSettings
) -> bool:
    from pymongo import AsyncMongoClient
    from redis.asyncio import Redis

    from .worker.runner import Worker

    structlog.get_logger("writebehind.worker").info(
        "connecting", redis=redact_url(redis_url), mongo=redact_url(mongo_url), database=database
    )
    redis = Redis.from_url(redis_url, max_connections=settings.partitions + 16)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, uuidRepresentation="standard")
    try:
        runner = Worker(redis, mongo[database], settings)
        try:
            await runner.run(handle_signals=True)
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from None
        return runner.forced
    finally:
        await redis.aclose()
        # close() sends endSessions, waiting up to serverSelectionTimeoutMS (30 s) for a
        # MongoDB that is down; nothing is left to save, so don't let that hold the exit.
        # (asyncio.wait_for, not an anyio scope: PyMongo needs a one-shot cancel.)
        try:
            await asyncio.wait_for(mongo.close(), timeout=2.0)
        except TimeoutError:
            structlog.get_logger("writebehind.worker").warning("mongodb_close_timed_out")


def _register_demo() -> None:
    from .demo import demo

    main.add_command(demo)


_register_demo()

if __name__ == "__main__":
    main()
