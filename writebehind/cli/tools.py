"""Helpers of the operator commands (``dlq``, ``stats``): running, checking, printing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import anyio
import click
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from writebehind.cli.common import Connection
from writebehind.cli.failures import UsageProblem, cluster_hint, mongo_reason
from writebehind.core.errors import ConfigurationError, PartitionCountMismatch, plural
from writebehind.core.keys import KeySpace
from writebehind.observability.logs import redact_url
from writebehind.settings import named
from writebehind.tools.durations import compact as format_duration

__all__ = [
    "format_duration",
    "plural",
    "render_table",
    "root_cause",
    "run_tool",
    "shorten",
    "verified_keys",
]

T = TypeVar("T")


def run_tool(conn: Connection, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``anyio.run(func, *args)``, with server failures as one clear line, not a traceback."""
    try:
        return anyio.run(func, *args)
    except ConfigurationError as exc:
        raise UsageProblem(str(exc)) from None
    except (RedisError, RedisClusterException) as exc:
        where = redact_url(conn.redis_url)
        line = f"Redis ({where}): {type(exc).__name__}: {exc}{cluster_hint(exc)}"
        raise click.ClickException(line) from None
    except PyMongoError as exc:
        where = redact_url(conn.mongo_url)
        raise click.ClickException(f"MongoDB ({where}): {mongo_reason(exc)}") from None


async def verified_keys(redis: Redis, conn: Connection) -> KeySpace:
    """The deployment's key space, with the partition count Redis records.

    Without ``--partitions`` (or its variable) the recorded count is used; a
    count given that differs from it is refused. Read-only: unlike producers
    and workers, a tool never records a count.
    """
    keys = conn.keys
    stored = await redis.hget(keys.meta, "partitions")
    if stored is None:
        return keys
    if not conn.partitions_given:
        return KeySpace(keys.prefix, int(stored))
    if int(stored) != keys.partitions:
        mismatch = PartitionCountMismatch(keys.partitions, int(stored))
        raise click.ClickException(f"{mismatch} ({named('partitions')})")
    return keys


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table; numbers right-aligned, everything else left-aligned."""
    cells = [[str(h) for h in headers]]
    numeric = [True] * len(headers)
    for row in rows:
        cells.append(["" if v is None else str(v) for v in row])
        for i, value in enumerate(row):
            if value is not None and not isinstance(value, int | float):
                numeric[i] = False
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row_cells in cells:
        parts = [
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(row_cells, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def root_cause(message: str) -> str:
    """The innermost part of a MongoDB message chained with ``:: caused by ::``."""
    return message.rsplit(":: caused by ::", 1)[-1].strip()
