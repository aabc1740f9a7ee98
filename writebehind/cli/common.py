"""Options and connections shared by every command."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import structlog
from pymongo import AsyncMongoClient
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from ..keys import KeySpace
from ..logs import configure_logging

F = TypeVar("F", bound=Callable[..., Any])


def env(name: str) -> str:
    return f"WRITEBEHIND_{name}"


def connection_options(func: F) -> F:
    """``--redis-url --mongo-url --database --prefix --partitions --group`` and logging.

    Each option also reads ``WRITEBEHIND_<NAME>``.
    """
    options = [
        click.option("--redis-url", envvar=env("REDIS_URL"), required=True, help="Redis URL."),
        click.option("--mongo-url", envvar=env("MONGO_URL"), required=True, help="MongoDB URL."),
        click.option("--database", envvar=env("DATABASE"), required=True, help="MongoDB database."),
        click.option("--prefix", envvar=env("PREFIX"), default="wb", show_default=True),
        click.option(
            "--partitions", envvar=env("PARTITIONS"), default=16, show_default=True, type=int
        ),
        click.option("--group", envvar=env("GROUP"), default="writebehind", show_default=True),
        click.option("--log-level", envvar=env("LOG_LEVEL"), default="info", show_default=True),
        click.option(
            "--log-format",
            envvar=env("LOG_FORMAT"),
            default="auto",
            show_default=True,
            type=click.Choice(["auto", "json", "console"]),
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass(frozen=True, slots=True)
class Connection:
    """What ``connection_options`` collected, minus the logging options."""

    redis_url: str
    mongo_url: str
    database: str
    prefix: str
    partitions: int
    group: str

    @classmethod
    def pop_from(cls, options: dict[str, Any]) -> Connection:
        """Take the connection options out of a command's kwargs and configure logging."""
        configure_logging(options.pop("log_level"), options.pop("log_format"))
        return cls(
            options.pop("redis_url"),
            options.pop("mongo_url"),
            options.pop("database"),
            options.pop("prefix"),
            options.pop("partitions"),
            options.pop("group"),
        )

    @property
    def keys(self) -> KeySpace:
        return KeySpace(self.prefix, self.partitions)


@asynccontextmanager
async def open_clients(
    conn: Connection, *, max_connections: int | None = None
) -> AsyncIterator[tuple[Redis, Any]]:
    """A Redis client and the MongoDB database; closed on exit, even with MongoDB down."""
    redis = Redis.from_url(conn.redis_url, max_connections=max_connections)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(conn.mongo_url, uuidRepresentation="standard")
    try:
        yield redis, mongo[conn.database]
    finally:
        await redis.aclose()
        # close() sends endSessions, waiting up to serverSelectionTimeoutMS (30 s) for a
        # MongoDB that is down; nothing is left to save, so don't let that hold the exit.
        # (asyncio.wait_for, not an anyio scope: PyMongo needs a one-shot cancel.)
        try:
            await asyncio.wait_for(mongo.close(), timeout=2.0)
        except TimeoutError:
            structlog.get_logger("writebehind.cli").warning("mongodb_close_timed_out")


def sink_options(func: F) -> F:
    """The workers' MongoDB write settings, for tools that write as they do."""
    options = [
        click.option(
            "--write-concern", envvar=env("WRITE_CONCERN"), default="1", show_default=True,
            help="MongoDB w: a number or 'majority'. The journal is always waited for.",
        ),
        click.option(
            "--tombstone-grace", envvar=env("TOMBSTONE_GRACE"), default=7 * 86400.0,
            show_default=True, type=click.FloatRange(min=0),
            help="Seconds a delete's tombstone stays (as the workers' setting).",
        ),
        click.option(
            "--hard-deletes/--tombstones", envvar=env("HARD_DELETES"), default=False,
            help="As the workers: delete documents outright instead of writing tombstones.",
        ),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def pop_sink_options(options: dict[str, Any]) -> dict[str, Any]:
    """``MongoSink`` keyword arguments from what ``sink_options`` collected."""
    w: str = options.pop("write_concern")
    return {
        "write_concern": WriteConcern(w=int(w) if w.isdigit() else w, j=True),
        "tombstone_grace": dt.timedelta(seconds=options.pop("tombstone_grace")),
        "hard_deletes": options.pop("hard_deletes"),
    }
