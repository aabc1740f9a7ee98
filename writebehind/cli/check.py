"""``writebehind check``."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import click
from pymongo.write_concern import WriteConcern

from writebehind.cli.common import (
    Connection,
    connection_options,
    open_clients,
    pop_settings,
    setting_option,
)
from writebehind.observability.logs import redact_url
from writebehind.tools.diagnose import Diagnosis, Level, diagnose

_MARKS = {Level.OK: "ok  ", Level.WARN: "WARN", Level.FAIL: "FAIL"}


@click.command()
@connection_options
@setting_option("write_concern")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def check(**options: Any) -> None:
    """Check Redis and MongoDB for a safe deployment; exit 1 on any failure."""
    settings = pop_settings(options, "write_concern")
    conn = Connection.from_settings(settings, interactive=True)
    concern = WriteConcern(w=settings.w, j=True)
    diagnosis = anyio.run(_run, conn, concern)
    if options["as_json"]:
        click.echo(json.dumps(diagnosis.as_dict(), indent=2))
    else:
        for f in diagnosis.findings:
            click.echo(f"{_MARKS[f.level]}  {f.check}: {f.detail}")
    sys.exit(1 if diagnosis.failed else 0)


async def _run(conn: Connection, concern: WriteConcern) -> Diagnosis:
    async with open_clients(conn) as (redis, db):
        servers = {"redis": redact_url(conn.redis_url), "mongodb": redact_url(conn.mongo_url)}
        return await diagnose(redis, db, conn.keys, conn.group, concern, servers=servers)
