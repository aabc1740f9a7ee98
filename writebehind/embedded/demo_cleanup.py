"""The demo's traces on servers of the user's: its events, and cleaning up after a run."""

from __future__ import annotations

from typing import Any

import click
from redis.asyncio import Redis


async def remove_keys(redis: Redis, prefix: str) -> int:
    """Delete every key of ``prefix`` (``{prefix}:meta``, ``{prefix:pN}:...``); returns how many."""
    removed = 0
    for pattern in (f"{{{prefix}}}:*", f"{{{prefix}:*"):
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                removed += await redis.delete(*batch)
                batch = []
        if batch:
            removed += await redis.delete(*batch)
    return removed


class Events:
    """What the demo did to the system, each printed once, on the progress line after it."""

    def __init__(self) -> None:
        self.all: list[str] = []
        self.shown = 0

    def append(self, event: str) -> None:
        self.all.append(event)

    def new(self) -> str:
        fresh = self.all[self.shown :]
        self.shown = len(self.all)
        return "; ".join(fresh)


async def leave_servers(
    redis: Redis | None, mongo: Any, prefix: str, database: str, *, keep: bool
) -> None:
    """Remove what the run wrote on the user's servers (``None``: the demo's own), or say
    what it leaves behind."""
    say = click.echo
    where = []
    if redis is not None:
        where.append(f"Redis keys {{{prefix}}}:* and {{{prefix}:p*}}")
    if mongo is not None:
        where.append(f"MongoDB database {database}")
    if keep:
        say("left on your servers (--keep, or the run failed): " + ", ".join(where))
        return
    try:
        if redis is not None:
            say(f"removed {await remove_keys(redis, prefix)} Redis keys of prefix {prefix}")
        if mongo is not None:
            await mongo.drop_database(database)
            say(f"removed MongoDB database {database}")
    except Exception as exc:  # the verdict stands; say what is left
        say(f"could not clean up ({type(exc).__name__}: {exc}); left: " + ", ".join(where))
