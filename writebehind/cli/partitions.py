"""``writebehind partitions show|set``: the deployment's partition count, and changing it."""

from __future__ import annotations

import json
from typing import Any

import click

from writebehind.cli.common import (
    Connection,
    connection_options,
    duration_callback,
    open_clients,
    redis_options,
)
from writebehind.cli.failures import UsageProblem
from writebehind.cli.tools import run_tool
from writebehind.core.deployment import recorded_partition_count
from writebehind.core.keys import KeySpace
from writebehind.tools.partitions import ResizeReport, resize
from writebehind.tools.seeding import SeedReport, seed_streams


@click.group()
def partitions() -> None:
    """The partition count: show it, or change it on a drained, stopped deployment."""


@partitions.command()
@redis_options
def show(**options: Any) -> None:
    """Print the partition count recorded in Redis (nothing if none is recorded yet)."""
    conn = Connection.pop_from(options, mongo=False)
    count = run_tool(conn, _recorded, conn)
    click.echo("" if count is None else str(count))


async def _recorded(conn: Connection) -> int | None:
    async with open_clients(conn) as (redis, _):
        return await recorded_partition_count(redis, conn.keys)


@partitions.command(name="set")
@click.argument("count", type=click.IntRange(1))
@redis_options
@click.option(
    "--worker-idle",
    default="30s",
    callback=duration_callback(positive=False),
    help="Refuse while a consumer was active this recently. [default: 30s]",
)
@click.option(
    "--quiet",
    default="10s",
    callback=duration_callback(positive=False),
    help="Refuse while a record is this recent (a producer writing). [default: 10s]",
)
@click.option("--dry-run", is_flag=True, help="Check only; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def set_count(count: int, **options: Any) -> None:
    """Change the partition count to COUNT (README, "Changing the partition count").

    Refused (exit 1, nothing changed) unless every partition is drained (no lag,
    nothing pending), no worker ran within --worker-idle and no record was
    written within --quiet. Then the old layout's cache entries are deleted and
    COUNT is recorded. Restart producers and workers with --partitions COUNT.
    """
    worker_idle, quiet = options.pop("worker_idle"), options.pop("quiet")
    dry_run, as_json = options.pop("dry_run"), options.pop("as_json")
    conn = Connection.pop_from(options, mongo=False)
    report = run_tool(conn, _resize, conn, count, worker_idle, quiet, dry_run)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    verb = "Would change" if report.dry_run else "Changed"
    click.echo(f"{verb} the partition count from {report.old} to {report.new}.")
    if not report.dry_run:
        click.echo(f"Deleted {report.entries_deleted} cache entries of the old layout.")
    if report.retired_history:
        click.echo(
            f"{report.retired_history} records of history stay in partitions {report.new} and "
            "above; replay no longer reads them."
        )


async def _resize(
    conn: Connection, count: int, worker_idle: float, quiet: float, dry_run: bool
) -> ResizeReport:
    async with open_clients(conn) as (redis, _):
        old = await recorded_partition_count(redis, conn.keys)
        if old is None:
            raise UsageProblem(
                f"no partition count is recorded for prefix {conn.prefix!r}: the first producer "
                "or worker records its --partitions"
            )
        keys = KeySpace(conn.prefix, old)
        return await resize(
            redis, keys, conn.group, count, worker_idle=worker_idle, quiet=quiet, dry_run=dry_run
        )


@partitions.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def seed(**options: Any) -> None:
    """Move every partition stream's last id above the highest version in MongoDB.

    A new Redis primary seeds itself above the version floor before its first
    write (README, "After a Redis failover"); this scan is for versions the
    floor does not cover: documents persisted before the floor existed (run it
    once after upgrading), copied in from elsewhere, or a deleted floor. It
    also raises the floor. Safe to run any time, any number of times. Scans
    each collection once without an index on ``_wb.v``.
    """
    as_json = options.pop("as_json")
    conn = Connection.pop_from(options)
    report = run_tool(conn, _seed, conn)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    elif report.floor is None:
        click.echo("MongoDB holds no writebehind document: nothing to seed.")
    else:
        raised = ", ".join(map(str, report.raised)) or "none"
        click.echo(f"Stream ids now start above {report.floor}; partitions raised: {raised}.")


async def _seed(conn: Connection) -> SeedReport:
    async with open_clients(conn) as (redis, database):
        old = await recorded_partition_count(redis, conn.keys)
        keys = conn.keys if old is None else KeySpace(conn.prefix, old)
        return await seed_streams(redis, keys, database)
