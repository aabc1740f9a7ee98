"""``writebehind worker``."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import click
import structlog

from writebehind.cli.common import (
    MONGO_CLOSE_TIMEOUT,
    Connection,
    close_mongo,
    connection_options,
    legacy_option,
    mongo_client,
    pop_settings,
    redis_client,
    setting_option,
)
from writebehind.cli.failures import SERVERS
from writebehind.core.errors import ConfigurationError
from writebehind.observability.logs import redact_url
from writebehind.settings import MONGO_AND_REDIS_FIELDS, Settings
from writebehind.worker.runner import Worker

WORKER_FIELDS = tuple(name for name in Settings.model_fields if name not in MONGO_AND_REDIS_FIELDS)
"""Every setting that is not a connection setting is a ``worker`` flag."""


def _worker_options(func: Any) -> Any:
    for name in reversed(WORKER_FIELDS):
        if name == "hard_deletes":
            func = setting_option(name, "--hard-deletes/--tombstones")(func)
        else:
            func = setting_option(name)(func)
        if name == "claim_idle":
            func = legacy_option("claim_idle_ms")(func)
        if name == "linger":
            func = legacy_option("linger_ms")(func)
    return func


@click.command()
@connection_options
@_worker_options
def worker(**options: Any) -> None:
    """Move change records from Redis into MongoDB until SIGTERM (then drain).

    Every option can also be set as a WRITEBEHIND_* environment variable or in
    a .env file; flags win. Durations are seconds, or 250ms, 30s, 5m, 2h, 7d.

    Waits for Redis and MongoDB at start (one log line per attempt; /healthz
    up, /readyz false meanwhile). Exit status: 0 stopped by SIGTERM or SIGINT,
    drained or at --drain-timeout (what it could not save stays pending for
    another worker); 1 stopped at once by a second signal, or a failure
    waiting cannot fix; 2 bad configuration.
    """
    settings = pop_settings(options)
    conn = Connection.from_settings(settings)
    forced = anyio.run(_run_worker, conn, settings)
    sys.exit(1 if forced else 0)


async def _run_worker(conn: Connection, settings: Settings) -> bool:
    SERVERS.update(redis=redact_url(conn.redis_url), mongodb=redact_url(conn.mongo_url))
    structlog.get_logger("writebehind.worker").info(
        "connecting", redis=SERVERS["redis"], mongo=SERVERS["mongodb"], database=conn.database
    )
    redis = redis_client(conn, max_connections=settings.partitions + 16)
    mongo = mongo_client(conn)
    runner = Worker(redis, mongo[conn.database], settings)
    try:
        await runner.run(handle_signals=True)
    except ConfigurationError as exc:
        # Found on the servers (or the host): status 1, as every failure after connecting.
        raise click.ClickException(str(exc)) from None
    finally:
        await redis.aclose()
        # After a drain that ran out of time (MongoDB down or frozen) the exit is due
        # now: --drain-timeout is the bound, so closing MongoDB gets no time of its own.
        cut_short = runner.forced or runner.drain_expired
        await close_mongo(mongo, conn, 0.0 if cut_short else MONGO_CLOSE_TIMEOUT)
    return runner.forced
