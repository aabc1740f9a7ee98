"""Options and connections shared by every command, derived from ``Settings``.

Each flag is a ``Settings`` field: its name, help, default and checks come from
the model, and the flag itself has no default (``None`` = not given), so the
``WRITEBEHIND_*`` variable and ``.env`` apply underneath it. Values reach the
model as text, so every bad value gets the same one-line error naming the flag
and the variable (exit status 2).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import typing
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import structlog
from pydantic import BeforeValidator
from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError as MongoConfigurationError
from pymongo.errors import InvalidName
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from writebehind.cli.failures import SERVERS, UsageProblem, scrub
from writebehind.core.errors import ConfigurationError
from writebehind.core.keys import KeySpace
from writebehind.core.redis_client import connect
from writebehind.durations import format_seconds, parse_duration
from writebehind.observability.logs import configure_logging, redact_url
from writebehind.settings import (
    DURATION_PARSERS,
    LEGACY_MS_ALIASES,
    Settings,
    env_of,
    flag_of,
    load_settings,
    named,
)

F = TypeVar("F", bound=Callable[..., Any])

MONGO_CLOSE_TIMEOUT = 0.5
"""Seconds ``close()`` may wait for MongoDB (``endSessions``) before the process goes on."""


def env(name: str) -> str:
    return f"WRITEBEHIND_{name}"


def _is_duration(field_name: str) -> bool:
    return any(
        isinstance(m, BeforeValidator) and m.func in DURATION_PARSERS
        for m in Settings.model_fields[field_name].metadata
    )


def _metavar(field_name: str) -> str:
    info = Settings.model_fields[field_name]
    if _is_duration(field_name):
        return "DURATION"
    if typing.get_origin(info.annotation) is typing.Literal:
        return "[" + "|".join(map(str, typing.get_args(info.annotation))) + "]"
    if _base_type(info.annotation) is int:
        return "N"
    return "TEXT"


def _base_type(annotation: Any) -> Any:
    """``int`` for ``int``, ``Annotated[int, ...]`` and ``int | None`` alike."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Annotated or (
        len(args) == 1 and annotation is not None and type(None) in typing.get_args(annotation)
    ):
        return _base_type(args[0])
    return annotation


def _shown_default(field_name: str) -> str:
    info = Settings.model_fields[field_name]
    if info.default_factory is not None or info.default is None:
        return ""
    if _is_duration(field_name):
        return f" [default: {format_seconds(float(info.default))}]"
    if isinstance(info.default, bool):
        return ""
    return f" [default: {info.default}]"


def setting_option(field_name: str, *decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A flag for a ``Settings`` field; its help shows the default and the variable."""
    info = Settings.model_fields[field_name]
    help_text = f"{info.description or ''}{_shown_default(field_name)} (env {env_of(field_name)})"
    if info.annotation is not bool:
        kwargs.setdefault("type", click.STRING)
        kwargs.setdefault("metavar", _metavar(field_name))
    param_decls = decls or (flag_of(field_name),)
    return click.option(*param_decls, field_name, default=None, help=help_text.strip(), **kwargs)


def legacy_option(old: str) -> Callable[[F], F]:
    """A deprecated millisecond flag (``--linger-ms``), kept as an alias until 0.3."""
    new = LEGACY_MS_ALIASES[old]
    return click.option(
        flag_of(old),
        old,
        default=None,
        type=click.STRING,
        metavar="MS",
        help=f"Deprecated alias of {flag_of(new)}, in milliseconds; removed in 0.3 "
        f"(env {env_of(old)}).",
    )


REDIS_FIELDS = (
    "redis_url",
    "redis_cluster",
    "prefix",
    "partitions",
    "group",
    "log_level",
    "log_format",
)
MONGO_FIELDS = ("mongo_url", "database", "read_preference")
SINK_FIELDS = ("write_concern", "tombstone_grace", "hard_deletes")


FLAG_DECLS = {"redis_cluster": ("--redis-cluster/--no-redis-cluster",)}
"""Boolean settings given as on/off flags."""


def _option(name: str, **kwargs: Any) -> Callable[[F], F]:
    return setting_option(name, *FLAG_DECLS.get(name, ()), **kwargs)


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def redis_options(func: F) -> F:
    """``--redis-url --prefix --partitions --group`` and logging: commands that need only Redis.

    ``--mongo-url`` and ``--database`` are still accepted (hidden, unused), so a
    script that passes the same connection flags to every command keeps working.
    """
    shown = [_option(name) for name in REDIS_FIELDS]
    return _apply(func, shown + [setting_option(name, hidden=True) for name in MONGO_FIELDS])


def connection_options(func: F) -> F:
    """``redis_options`` and ``--mongo-url --database``: commands that need both servers."""
    fields = REDIS_FIELDS[:1] + MONGO_FIELDS + REDIS_FIELDS[1:]
    return _apply(func, [_option(name) for name in fields])


def pop_settings(options: dict[str, Any], *extra_fields: str) -> Settings:
    """Settings from every settings flag popped out of ``options`` (``extra_fields`` too).

    Flags win over ``WRITEBEHIND_*`` variables, which win over ``.env``. A bad
    value is a one-line usage error naming the option (exit status 2).
    """
    names = set(Settings.model_fields) | set(LEGACY_MS_ALIASES) | set(extra_fields)
    flags = {name: options.pop(name) for name in list(options) if name in names}
    try:
        return load_settings(flags)
    except ConfigurationError as exc:
        raise UsageProblem(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Connection:
    """Where a command connects: the URLs (secrets: never print them) and the key space.

    ``mongo_url`` and ``database`` are empty for commands that need only Redis.
    """

    redis_url: str = field(repr=False)
    mongo_url: str = field(repr=False)
    database: str
    prefix: str
    partitions: int
    group: str
    partitions_given: bool = True
    """False when ``--partitions`` was left at its default (tools then read Redis's count)."""
    redis_cluster: bool = False
    """``redis_url`` names a node of a Redis Cluster."""
    read_preference: str | None = None
    """The MongoDB read preference given (None: the URL's, else primary)."""

    @classmethod
    def from_settings(
        cls, settings: Settings, *, mongo: bool = True, interactive: bool = False
    ) -> Connection:
        """Check the connection settings are complete and configure logging.

        ``interactive`` commands (the tools, as opposed to the worker daemon) log
        human-readable lines with ``--log-format auto``, so their logs read well
        beside their own output even when stderr is not a terminal.
        """
        try:
            settings.require("redis_url", *(("mongo_url", "database") if mongo else ()))
            if mongo:
                _check_database_name(settings.database or "")
        except ConfigurationError as exc:
            raise UsageProblem(str(exc)) from None
        fmt = settings.log_format
        configure_logging(settings.log_level, "console" if interactive and fmt == "auto" else fmt)
        SERVERS["redis"] = settings.redacted("redis_url")
        if mongo:
            SERVERS["mongodb"] = settings.redacted("mongo_url")
        return cls(
            settings.secret("redis_url"),
            settings.secret("mongo_url") if mongo else "",
            settings.database or "" if mongo else "",
            settings.prefix,
            settings.partitions,
            settings.group,
            "partitions" in settings.model_fields_set,
            settings.redis_cluster,
            settings.read_preference if "read_preference" in settings.model_fields_set else None,
        )

    @classmethod
    def pop_from(
        cls, options: dict[str, Any], *, mongo: bool = True, interactive: bool = True
    ) -> Connection:
        """Take the connection options out of a command's kwargs."""
        return cls.from_settings(pop_settings(options), mongo=mongo, interactive=interactive)

    @property
    def keys(self) -> KeySpace:
        return KeySpace(self.prefix, self.partitions)


def _check_database_name(name: str) -> None:
    """MongoDB's database name rules (no ``/\\. "$`` or NUL, under 64 bytes), checked up front.

    From the MongoDB manual, "Naming Restrictions"; the driver only checks some of
    them, and only when the first operation is sent.
    """
    bad = set('/\\. "$\x00') & set(name)
    if bad or not name or len(name.encode()) >= 64:
        raise ConfigurationError(
            f"{named('database')}: a MongoDB database name has 1-63 bytes and none of "
            '/\\. "$ (MongoDB manual, "Naming Restrictions")'
        )


def redis_client(conn: Connection, *, max_connections: int | None = None) -> Redis:
    """A Redis client for ``conn``; a URL the driver refuses is a one-line usage error."""
    try:
        return connect(conn.redis_url, cluster=conn.redis_cluster, max_connections=max_connections)
    except (ValueError, TypeError) as exc:
        raise UsageProblem(f"{named('redis_url')}: {scrub(str(exc), conn.redis_url)}") from None


SERVER_SELECTION_TIMEOUT_MS = 4000
"""How long one MongoDB operation waits for a server before failing (PyMongo's default,
30 s, would hide an outage that long); every caller retries, so a shorter wait only
makes a failure visible sooner. ``serverSelectionTimeoutMS`` in the URL wins."""


def mongo_client(conn: Connection) -> AsyncMongoClient[Any]:
    """A MongoDB client for ``conn``; a URL the driver refuses is a one-line usage error."""
    options: dict[str, Any] = {"uuidRepresentation": "standard"}
    if "serverselectiontimeoutms" not in conn.mongo_url.lower():
        options["serverSelectionTimeoutMS"] = SERVER_SELECTION_TIMEOUT_MS
    if conn.read_preference is not None:  # given as a flag or variable: it wins over the URL
        options["readPreference"] = conn.read_preference
    try:
        return AsyncMongoClient(conn.mongo_url, **options)
    except (MongoConfigurationError, InvalidName, ValueError, TypeError) as exc:
        raise UsageProblem(f"{named('mongo_url')}: {scrub(str(exc), conn.mongo_url)}") from None


@asynccontextmanager
async def open_clients(
    conn: Connection, *, max_connections: int | None = None
) -> AsyncIterator[tuple[Redis, Any]]:
    """A Redis client and the MongoDB database (None for Redis-only commands); closed on exit.

    Closing MongoDB sends ``endSessions``, which waits for a server that is down;
    nothing is left to save by then, so it gets ``MONGO_CLOSE_TIMEOUT`` seconds.
    """
    redis = redis_client(conn, max_connections=max_connections)
    mongo = mongo_client(conn) if conn.mongo_url else None
    try:
        yield redis, (mongo[conn.database] if mongo is not None else None)
    finally:
        await redis.aclose()
        if mongo is not None:
            await close_mongo(mongo, conn, MONGO_CLOSE_TIMEOUT)


async def close_mongo(mongo: AsyncMongoClient[Any], conn: Connection, wait: float) -> None:
    """Close ``mongo``, waiting at most ``wait`` seconds (0: do not wait at all).

    Nothing is left to save by then: ``endSessions`` is a courtesy, and the
    process exits right after, which closes the sockets anyway.
    """
    if wait <= 0:
        return
    # asyncio.wait_for, not an anyio scope: PyMongo needs a one-shot cancel.
    try:
        await asyncio.wait_for(mongo.close(), timeout=wait)
    except TimeoutError:
        structlog.get_logger("writebehind.cli").warning(
            "mongodb_close_timed_out", mongo=redact_url(conn.mongo_url)
        )


def sink_options(func: F) -> F:
    """The workers' MongoDB write settings, for tools that write as they do."""
    return _apply(
        func,
        [
            setting_option("write_concern"),
            setting_option("tombstone_grace"),
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
    flags = {name: options.pop(name) for name in SINK_FIELDS}
    try:
        return sink_kwargs(load_settings(flags))
    except ConfigurationError as exc:
        raise UsageProblem(str(exc)) from None


def timeout_option(func: F) -> F:
    """``--timeout``: how long a tool waits out a failing MongoDB before it gives up (exit 5)."""
    return click.option(
        "--timeout",
        default="5m",
        show_default=True,
        metavar="DURATION",
        callback=duration_callback(positive=True),
        help="Give up (exit status 5) once MongoDB has kept failing this long; what was "
        "applied stays applied, and running the command again is safe.",
    )(func)


def duration_callback(*, positive: bool) -> Callable[[click.Context, click.Parameter, Any], float]:
    """A click callback for a command's own duration flag: seconds from ``30``, ``250ms``,
    ``30s``, ``5m``, ``2h`` (``writebehind.durations``), as the settings take them.

    A bad value raises ``UsageProblem`` (one line naming the flag, exit status 2);
    ``positive``: 0 is refused too, else only negative durations (and NaN) are.
    """

    def parse(_ctx: click.Context, param: click.Parameter, value: Any) -> float:
        flag = param.opts[0] if param.opts else str(param.name)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise UsageProblem(f"{flag}: {exc}") from None
        if positive and not seconds > 0:
            raise UsageProblem(f"{flag}: must be more than 0")
        if not seconds >= 0:
            raise UsageProblem(f"{flag}: must be 0 or more")
        return seconds

    return parse


class RetryNotice:
    """Prints "MongoDB unreachable, retrying, N records waiting" lines while a tool waits."""

    def __init__(self, conn: Connection, line: Any = None) -> None:
        self.where = redact_url(conn.mongo_url)
        self.line = line

    def __call__(self, error: str, waiting: int, failing_for: float) -> None:
        # Without PyMongo's topology dump, which follows the cause.
        reason = " ".join(error.split()).split(", Timeout:")[0][:160]
        text = (
            f"MongoDB ({self.where}) unreachable, retrying, {waiting:,} records waiting "
            f"(failing for {failing_for:.0f}s: {reason})"
        )
        if self.line is not None:
            self.line.note(text)
        else:
            click.echo(text, err=True)
