"""Helpers of the operator commands (``dlq``, ``stats``): running, checking, printing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import anyio
import click
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from writebehind.cli.common import Connection
from writebehind.cli.failures import UsageProblem
from writebehind.core.errors import ConfigurationError, PartitionCountMismatch
from writebehind.core.keys import KeySpace
from writebehind.observability.logs import redact_url
from writebehind.settings import named

T = TypeVar("T")


def run_tool(conn: Connection, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``anyio.run(func, *args)``, with server failures as one clear line, not a traceback."""
    try:
        return anyio.run(func, *args)
    except ConfigurationError as exc:
        raise UsageProblem(str(exc)) from None
    except RedisError as exc:
        raise click.ClickException(f"Redis ({redact_url(conn.redis_url)}): {exc}") from None
    except PyMongoError as exc:
        raise click.ClickException(f"MongoDB ({redact_url(conn.mongo_url)}): {exc}") from None


async def checked_keys(redis: Redis, conn: Connection) -> KeySpace:
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


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_duration(seconds: float | None) -> str:
    """``0.4s``, ``12.0s``, ``3m05s``, ``2h03m``, ``4d02h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"
