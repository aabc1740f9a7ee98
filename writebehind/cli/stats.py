"""``writebehind stats``: backlog, pending entries, consumers and dead letters per partition."""

from __future__ import annotations

import json
from typing import Any

import click

from writebehind.cli.common import Connection, open_clients, redis_options
from writebehind.cli.tools import format_duration, render_table, run_tool, verified_keys
from writebehind.tools.stream_stats import StreamStats, collect


def format_stats(stats: StreamStats) -> str:
    """The human view: one row per partition and a total, then the consumers."""

    def lag(value: int, exact: bool) -> str:
        return str(value) if exact else f">={value}"

    rows: list[list[Any]] = [
        [
            p.partition,
            p.stream_length,
            p.pending,
            lag(p.lag, p.lag_exact),
            format_duration(p.oldest_pending_age),
            p.dead_letters,
            len(p.consumers) if p.group_exists else "no group",
        ]
        for p in stats.partitions
    ]
    rows.append(
        [
            "total",
            stats.stream_length,
            stats.pending,
            lag(stats.lag, stats.lag_exact),
            format_duration(stats.oldest_pending_age),
            stats.dead_letters,
            len(stats.consumers),
        ]
    )
    table = render_table(
        ["PARTITION", "STREAM", "PENDING", "LAG", "OLDEST PENDING", "DEAD LETTERS", "CONSUMERS"],
        rows,
    )
    out = [f"Group {stats.group!r}, {len(stats.partitions)} partitions", "", table, ""]
    if stats.consumers:
        out.append(
            render_table(
                ["CONSUMER", "PENDING", "IDLE", "PARTITIONS"],
                (
                    [
                        c.name,
                        c.pending,
                        format_duration(c.idle_ms / 1000),
                        ",".join(str(p) for p in c.partitions),
                    ]
                    for c in stats.consumers
                ),
            )
        )
    else:
        out.append("No consumers.")
    return "\n".join(out)


@click.command()
@redis_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (top-level totals too).")
def stats(**options: Any) -> None:
    """Per partition: stream length, pending, lag, oldest pending age, dead letters.

    Lag is entries not yet delivered to any worker; pending is delivered but
    not yet acknowledged (in MongoDB). Then the consumers with their idle times.
    """
    conn = Connection.pop_from(options, mongo=False)
    result = run_tool(conn, _collect, conn)
    if options["as_json"]:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(format_stats(result))


async def _collect(conn: Connection) -> StreamStats:
    async with open_clients(conn) as (redis, _):
        return await collect(redis, await verified_keys(redis, conn), conn.group)
