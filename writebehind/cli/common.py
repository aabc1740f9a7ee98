"""Options and connections shared by every command."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import structlog
from pymongo import AsyncMongoClient
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from writebehind.core.errors import ConfigurationError
from writebehind.core.keys import KeySpace
from writebehind.core.redis_client import connect
from writebehind.observability.logs import configure_logging
from writebehind.settings import Settings, env_of, flag_of, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def env(name: str) -> str:
    return f"WRITEBEHIND_{name}"


def setting_option(field: str, *decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A flag for a ``Settings`` field: no default of its own (``None`` = not given),
    so ``WRITEBEHIND_*`` and ``.env`` apply underneath it; help names both."""
    info = Settings.model_fields[field]
    default = info.default
    shown = "" if default is None else f" [default: {default}]"
    help_text = f"{info.description or ''}{shown} (env {env_of(field)})".strip()
    param_decls = decls or (flag_of(field),)
    return click.option(*param_decls, field, default=None, help=help_text, **kwargs)


_CONNECTION_FIELDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("redis_url", {}),
    ("mongo_url", {}),
    ("database", {}),
    ("prefix", {}),
    ("partitions", {"type": int}),
    ("group", {}),
    ("log_level", {"type": click.Choice(["debug", "info", "warning", "error"])}),
    ("log_format", {"type": click.Choice(["auto", "json", "console"])}),
)
_SINK_FIELDS = ("write_concern", "tombstone_grace", "hard_deletes")


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def connection_options(func: F) -> F:
    """``--redis-url --mongo-url --database --prefix --partitions --group`` and logging."""
    return _apply(func, [setting_option(name, **kw) for name, kw in _CONNECTION_FIELDS])


def pop_settings(options: dict[str, Any], *extra_fields: str) -> Settings:
    """Settings from the connection flags (and ``extra_fields``) popped out of ``options``.

    Flags win over ``WRITEBEHIND_*`` variables, which win over ``.env``. Bad
    values are a usage error naming the option.
    """
    names = [name for name, _ in _CONNECTION_FIELDS] + list(extra_fields)
    flags = {name: options.pop(name) for name in names if name in options}
    try:
        return load_settings(flags)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Connection:
    """Where a command connects: the URLs (secrets: never print them) and the key space."""

    redis_url: str = field(repr=False)
    mongo_url: str = field(repr=False)
    database: str
    prefix: str
    partitions: int
    group: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Connection:
        """Check the connection settings are complete and configure logging."""
        try:
            settings.require("redis_url", "mongo_url", "database")
            KeySpace(settings.prefix, settings.partitions)
        except ConfigurationError as exc:
            raise click.UsageError(str(exc)) from None
        configure_logging(settings.log_level, settings.log_format)
        assert settings.database is not None
        return cls(
            settings.secret("redis_url"),
            settings.secret("mongo_url"),
            settings.database,
            settings.prefix,
            settings.partitions,
            settings.group,
        )

    @classmethod
    def pop_from(cls, options: dict[str, Any]) -> Connection:
        """Take the connection options out of a command's kwargs."""
        return cls.from_settings(pop_settings(options))

    @property
    def keys(self) -> KeySpace:
        return KeySpace(self.prefix, self.partitions)


@asynccontextmanager
async def open_clients(
    conn: Connection, *, max_connections: int | None = None
) -> AsyncIterator[tuple[Redis, Any]]:
    """A Redis client and the MongoDB database; closed on exit, even with MongoDB down."""
    redis = connect(conn.redis_url, max_connections=max_connections)
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
    return _apply(
        func,
        [
            setting_option("write_concern"),
            setting_option("tombstone_grace", type=click.FloatRange(min=0)),
            setting_option("hard_deletes", "--hard-deletes/--tombstones"),
        ],
    )


def sink_kwargs(settings: Settings) -> dict[str, Any]:
    """``MongoSink`` keyword arguments, as the workers configure theirs."""
    return {
        "write_concern": WriteConcern(w=settings.w, j=True),
        "tombstone_grace": dt.timedelta(seconds=settings.tombstone_grace),
        "hard_deletes": settings.hard_deletes,
    }


def pop_sink_options(options: dict[str, Any]) -> dict[str, Any]:
    """``MongoSink`` keyword arguments from the flags ``sink_options`` collected."""
    flags = {name: options.pop(name) for name in _SINK_FIELDS}
    try:
        return sink_kwargs(load_settings(flags))
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
