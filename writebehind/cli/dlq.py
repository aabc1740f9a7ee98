"""``writebehind dlq list|show|replay|purge``: the dead-letter streams."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from writebehind.cli.common import (
    Connection,
    RetryNotice,
    connection_options,
    open_clients,
    pop_sink_options,
    redis_options,
    sink_options,
    timeout_option,
)
from writebehind.cli.failures import EXIT_DEAD_LETTERS, Unavailable, UsageProblem
from writebehind.cli.tools import plural, render_table, root_cause, run_tool, shorten, verified_keys
from writebehind.core.errors import InvalidLetterId, UnknownLetters
from writebehind.core.keys import KeySpace
from writebehind.durations import format_seconds
from writebehind.observability.logs import redact_url
from writebehind.sink.bulk import MongoSink
from writebehind.tools.dead_letters import (
    RedriveReport,
    get_letters,
    list_letters,
    purge,
    purge_all,
    redrive_all,
    redrive_ids,
)
from writebehind.tools.letters import (
    DeadLetter,
    LetterId,
    document_json,
    format_doc_id,
    iso_time,
)

ERROR_WIDTH = 60


def _json_flag(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def _selection(func: Any) -> Any:
    """``[ID]... --all --collection``: the letters a command acts on (``validate_selection``)."""
    only = "With --all: only this collection."
    func = click.option("--collection", default=None, help=only)(func)
    every = "Every dead letter (there is now)."
    func = click.option("--all", "all_", is_flag=True, help=every)(func)
    return click.argument("ids", nargs=-1, metavar="[ID]...")(func)


@click.group()
def dlq() -> None:
    """Dead letters: records MongoDB refused for good, with why.

    A dead letter's ID is <partition>/<entry id>, as `dlq list` shows.
    """


# -- pure formatting (unit-tested) --------------------------------------------


def parse_ids(texts: Sequence[str], partitions: int | None = None) -> list[LetterId]:
    """Parse command-line IDs; a bad one is a usage error naming it.

    Without ``partitions`` only the form is checked; ``in_range`` checks the
    partition once the deployment's count is known.
    """
    try:
        return [LetterId.parse(t, partitions) for t in texts]
    except InvalidLetterId as exc:
        raise UsageProblem(f"Invalid value for ID: {exc}") from None


def _known_partitions(conn: Connection) -> int | None:
    """The partition count if given (flag or variable); else it is read from Redis later."""
    return conn.partitions if conn.partitions_given else None


def in_range(ids: Sequence[LetterId], keys: KeySpace) -> None:
    """Refuse an ID whose partition the deployment does not have."""
    parse_ids([str(i) for i in ids], keys.partitions)


def validate_selection(ids: Sequence[str], all_: bool, collection: str | None) -> None:
    """``--all`` or IDs, exactly one; ``--collection`` only narrows ``--all``."""
    if all_ and ids:
        raise UsageProblem("give dead-letter IDs or --all, not both")
    if not all_ and not ids:
        raise UsageProblem("give the dead-letter IDs to act on, or --all")
    if collection is not None and not all_:
        raise UsageProblem("--collection only goes with --all")


def _error_text(code: int | None, message: str) -> str:
    """For tables: ``[code] root cause`` (``show`` has the whole message)."""
    return ("" if code is None else f"[{code}] ") + root_cause(message)


def format_list(letters: Sequence[DeadLetter]) -> str:
    if not letters:
        return "No dead letters."
    table = render_table(
        ["ID", "COLLECTION", "DOCUMENT", "VERSION", "OP", "TRIES", "FAILED AT", "ERROR"],
        (
            [
                str(letter.id),
                letter.collection,
                shorten(format_doc_id(letter.doc_id), 30),
                letter.version or "?",
                letter.op,
                letter.deliveries,
                iso_time(letter.failed_at) or "?",
                shorten(_error_text(letter.error_code, letter.error), ERROR_WIDTH),
            ]
            for letter in letters
        ),
    )
    return f"{table}\n\n{plural(len(letters), 'dead letter')}."


def format_letter(letter: DeadLetter) -> str:
    version = "?" if letter.version is None else str(letter.version)
    document = letter.document()
    lines = [
        f"Dead letter {letter.id}",
        f"  collection:    {letter.collection}",
        f"  document id:   {format_doc_id(letter.doc_id)}",
        f"  version:       {version}",
        f"  op:            {letter.op}",
        f"  error kind:    {letter.error_kind or '?'}",
        f"  error code:    {'-' if letter.error_code is None else letter.error_code}",
        f"  error:         {letter.error}",
        f"  tries:         {letter.deliveries}",
        f"  failed at:     {iso_time(letter.failed_at) or '?'}",
        f"  stream entry:  {letter.source_id or '?'} (partition {letter.id.partition})",
        f"  consumer:      {letter.consumer or '?'}",
    ]
    if letter.problem is not None:
        lines.append(f"  cannot replay: {letter.problem}")
    if document is None:
        lines.append(f"  document:      <not decodable: {len(letter.body)} bytes>")
    else:
        lines.append("  document:")
        lines += ["    " + line for line in document_json(document).splitlines()]
    return "\n".join(lines)


def format_redrive(report: RedriveReport) -> str:
    if not report.results:
        return "No dead letters."
    rows = []
    for r in report.results:
        if report.dry_run:
            fate = "would be removed" if r.outcome not in ("failed", "invalid") else "kept"
        elif r.removed:
            fate = "removed"
        elif r.new_id is not None:
            fate = f"kept as {r.new_id}"
        else:
            fate = "kept"
        note = ""
        if r.error is not None:
            note = shorten(_error_text(r.error.code, r.error.message), ERROR_WIDTH)
        rows.append(
            [
                str(r.letter.id),
                r.letter.collection,
                shorten(format_doc_id(r.letter.doc_id), 30),
                r.letter.version or "?",
                r.outcome,
                fate,
                note,
            ]
        )
    table = render_table(
        ["ID", "COLLECTION", "DOCUMENT", "VERSION", "OUTCOME", "LETTER", "ERROR"], rows
    )
    totals = report.totals()
    counted = ", ".join(f"{k} {v}" for k, v in totals.items() if v and k != "letters")
    head = "Dry run: nothing was written or removed.\n\n" if report.dry_run else ""
    letters = plural(totals["letters"], "dead letter")
    return f"{head}{table}\n\n{letters}: {counted or 'nothing to do'}."


# -- commands -------------------------------------------------------------------


@dlq.command("list")
@redis_options
@click.option("--collection", default=None, help="Only letters of this collection.")
@_json_flag
def list_command(**options: Any) -> None:
    """List dead letters: collection, document, version, tries, when, and the error."""
    conn = Connection.pop_from(options, mongo=False)
    letters = run_tool(conn, _list, conn, options["collection"])
    if options["as_json"]:
        body = {"count": len(letters), "dead_letters": [x.as_dict() for x in letters]}
        click.echo(json.dumps(body, indent=2))
    else:
        click.echo(format_list(letters))


async def _list(conn: Connection, collection: str | None) -> list[DeadLetter]:
    async with open_clients(conn) as (redis, _):
        return await list_letters(redis, await verified_keys(redis, conn), collection=collection)


@dlq.command()
@redis_options
@click.argument("letter_id", metavar="ID")
@_json_flag
def show(**options: Any) -> None:
    """Show one dead letter in full, with its document."""
    conn = Connection.pop_from(options, mongo=False)
    [letter_id] = parse_ids([options["letter_id"]], _known_partitions(conn))
    letter = run_tool(conn, _show, conn, letter_id)
    if options["as_json"]:
        click.echo(json.dumps(letter.as_dict(with_document=True), indent=2))
    else:
        click.echo(format_letter(letter))


async def _show(conn: Connection, letter_id: LetterId) -> DeadLetter:
    async with open_clients(conn) as (redis, _):
        keys = await verified_keys(redis, conn)
        in_range([letter_id], keys)
        try:
            [letter] = await get_letters(redis, keys, [letter_id])
        except UnknownLetters as exc:
            raise click.ClickException(f"{exc} (see `writebehind dlq list`)") from None
        return letter


@dlq.command("replay")
@connection_options
@_selection
@click.option("--dry-run", is_flag=True, help="Write and remove nothing; say what would happen.")
@sink_options
@timeout_option
@_json_flag
def redrive_command(**options: Any) -> None:
    """Re-drive dead letters into MongoDB at their original versions.

    A letter that lands, or that MongoDB already holds a newer version of, is
    removed. One that MongoDB refuses again stays, with the new error and one
    more try (it gets a new ID). Exit status: 0 all resolved; 4 some letters
    stay (as `writebehind replay` when it dead-letters); 2 bad arguments;
    5 MongoDB kept failing for --timeout (what was re-driven stays done; run
    it again); 1 any other error.
    """
    validate_selection(options["ids"], options["all_"], options["collection"])
    sink_kwargs = pop_sink_options(options)
    timeout: float = options.pop("timeout")
    conn = Connection.pop_from(options)
    ids = parse_ids(options["ids"], _known_partitions(conn))
    try:
        report = run_tool(
            conn,
            _redrive,
            conn,
            ids,
            options["all_"],
            options["collection"],
            options["dry_run"],
            sink_kwargs,
            timeout,
        )
    except click.ClickException:
        raise
    except TimeoutError as exc:
        raise Unavailable(
            f"MongoDB ({redact_url(conn.mongo_url)}) kept failing for --timeout "
            f"{format_seconds(timeout)}: {str(exc).rstrip('.')}. What was re-driven stays "
            "done; running the same command again is safe."
        ) from None
    if options["as_json"]:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(format_redrive(report))
    if report.unresolved:
        click.echo(
            f"{plural(len(report.unresolved), 'dead letter')} could not be re-driven and stay",
            err=True,
        )
        sys.exit(EXIT_DEAD_LETTERS)


async def _redrive(
    conn: Connection,
    ids: list[LetterId],
    all_: bool,
    collection: str | None,
    dry_run: bool,
    sink_kwargs: dict[str, Any],
    timeout: float,  # noqa: ASYNC109 - a retry budget handed down, not a cancel scope
) -> RedriveReport:
    async with open_clients(conn) as (redis, db):
        keys = await verified_keys(redis, conn)
        in_range(ids, keys)
        sink = MongoSink(db, prefix=conn.prefix, **sink_kwargs)
        more: dict[str, Any] = {
            "dry_run": dry_run, "sink": sink, "retry_for": timeout, "on_retry": RetryNotice(conn)
        }  # fmt: skip
        if all_:
            return await redrive_all(redis, db, keys, collection=collection, **more)
        try:
            return await redrive_ids(redis, db, keys, ids, **more)
        except UnknownLetters as exc:
            raise click.ClickException(f"{exc}; nothing was re-driven") from None


@dlq.command("purge")
@redis_options
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "all_", is_flag=True, help="Every dead letter (there is now).")
@click.option("--collection", default=None, help="With --all: only this collection.")
@click.option("--yes", is_flag=True, help="With --all: do not ask for confirmation.")
def purge_command(**options: Any) -> None:
    """Delete dead letters for good (their records are not re-driven)."""
    validate_selection(options["ids"], options["all_"], options["collection"])
    yes = options.pop("yes")
    conn = Connection.pop_from(options, mongo=False)
    ids = parse_ids(options["ids"], _known_partitions(conn))
    if options["all_"] and not yes:
        confirm_purge_all(options["collection"])
    removed = run_tool(conn, _purge, conn, ids, options["all_"], options["collection"])
    click.echo(f"Removed {plural(removed, 'dead letter')}.")


def _interactive() -> bool:
    return sys.stdin.isatty()


def confirm_purge_all(collection: str | None) -> None:
    """``--all`` throws records away for good: ask on a terminal, demand ``--yes`` elsewhere."""
    what = "every dead letter" + (f" of collection {collection!r}" if collection else "")
    if not _interactive():
        raise UsageProblem(f"--all deletes {what} for good; add --yes to confirm")
    click.confirm(f"Delete {what} for good, without re-driving it?", abort=True)


async def _purge(conn: Connection, ids: list[LetterId], all_: bool, collection: str | None) -> int:
    async with open_clients(conn) as (redis, _):
        keys = await verified_keys(redis, conn)
        in_range(ids, keys)
        if all_:
            return await purge_all(redis, keys, collection=collection)
        try:
            return await purge(redis, keys, ids)
        except UnknownLetters as exc:
            raise click.ClickException(f"{exc}; nothing was removed") from None
