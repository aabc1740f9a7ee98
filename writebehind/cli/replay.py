"""``writebehind replay``: re-apply retained stream records to MongoDB."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

import anyio
import click
from pymongo.errors import PyMongoError
from redis.exceptions import RedisClusterException, RedisError

from writebehind.cli.common import (
    Connection,
    RetryNotice,
    connection_options,
    open_clients,
    pop_sink_options,
    sink_options,
    timeout_option,
)
from writebehind.cli.failures import (
    EXIT_DEAD_LETTERS,
    EXIT_HISTORY_GAP,
    EXIT_OK,
    Unavailable,
    UsageProblem,
    cluster_hint,
)
from writebehind.cli.tools import verified_keys
from writebehind.core.errors import (
    BoundError,
    HistoryGapError,
    InvalidCollectionName,
    PartitionCountMismatch,
)
from writebehind.core.keys import validate_collection_name
from writebehind.durations import format_seconds
from writebehind.observability.logs import redact_url
from writebehind.sink.bulk import MongoSink
from writebehind.sink.reapply import Outcome
from writebehind.tools.replay.bounds import ReplayRange, describe, iso, parse_bound
from writebehind.tools.replay.progress import render, snapshot
from writebehind.tools.replay.runner import ReplayOptions, ReplayResult
from writebehind.tools.replay.runner import replay as run_replay

_VERBS = {
    Outcome.INSERTED: ("inserted", "insert"),
    Outcome.UPDATED: ("updated", "update"),
    Outcome.DELETED: ("deleted", "delete"),
    Outcome.SKIPPED_NEWER: ("skipped as newer", "skip as newer"),
}


@click.command()
@connection_options
@click.option(
    "--since", required=True, metavar="SINCE",
    help="ISO-8601 time (no timezone = UTC) or stream entry id (1718020800000-0 or 1718020800000).",
)  # fmt: skip
@click.option(
    "--until", default=None, metavar="UNTIL",
    help="Same forms as SINCE, inclusive. Default: each stream's end when the replay starts.",
)  # fmt: skip
@click.option("--collection", default=None, help="Only records of this collection.")
@click.option(
    "--partition", default=None, type=int,
    help="Only this partition's stream (0 to the deployment's count - 1; the count is "
    "read from Redis unless --partitions is given).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Write nothing; report what would change.")
@click.option(
    "--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000),
    help="Entries read per XRANGE and written per bulk_write.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--allow-gap", is_flag=True,
    help="Go on when SINCE is older than the retained history (replay what is left).",
)  # fmt: skip
@click.option(
    "--progress/--no-progress", default=None,
    help="Progress line on stderr. Default: on a terminal, unless --json.",
)  # fmt: skip
@timeout_option
@sink_options
def replay(**options: Any) -> None:
    """Re-apply the retained change records between SINCE and UNTIL to MongoDB.

    Records go through the workers' version-guarded writes, coalesced per
    document, so a replay never rolls a document back and running it twice
    changes nothing. Safe while workers run. Records MongoDB refuses for good
    are dead-lettered (see `writebehind dlq`), once: a record that already has
    a dead letter gets no second one.

    Exit status: 0 done (dry run included); 2 bad arguments; 3 SINCE is older
    than the retained history (nothing written; see --allow-gap); 4 done, but
    some records were refused and are dead-lettered (now or before); 5
    MongoDB kept failing for --timeout (what was applied stays applied; run
    the same command again); 1 any other error.
    """
    replay_options = _replay_options(options)
    timeout: float = options.pop("timeout")
    as_json: bool = options.pop("as_json")
    progress: bool | None = options.pop("progress")
    show_progress = progress if progress is not None else (not as_json and sys.stderr.isatty())
    sink_kwargs = pop_sink_options(options)
    conn = Connection.pop_from(options, interactive=True)
    if replay_options.partition is not None and conn.partitions_given:
        check_partition(replay_options.partition, conn.partitions)
    line = _ProgressLine(sys.stderr) if show_progress else None
    try:
        result = anyio.run(_run, conn, sink_kwargs, replay_options, line, timeout)
    except HistoryGapError as exc:
        _refuse(exc, replay_options, as_json)
        sys.exit(EXIT_HISTORY_GAP)
    finally:
        if line is not None:
            line.close()
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        click.echo(summary(result))
    sys.exit(EXIT_DEAD_LETTERS if result.refused else EXIT_OK)


def _replay_options(options: dict[str, Any]) -> ReplayOptions:
    """Check the replay's own arguments (before any connection is opened)."""
    try:
        since = parse_bound(options.pop("since"))
    except BoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since'") from None
    until_text = options.pop("until")
    try:
        until = None if until_text is None else parse_bound(until_text, end=True)
    except BoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--until'") from None
    try:
        bounds = ReplayRange(since, until)
    except BoundError as exc:
        raise click.UsageError(str(exc)) from None
    collection = options.pop("collection")
    if collection is not None:
        try:
            validate_collection_name(collection)
        except InvalidCollectionName as exc:
            raise click.BadParameter(str(exc), param_hint="'--collection'") from None
    partition = options.pop("partition")
    return ReplayOptions(
        bounds,
        collection=collection,
        partition=partition,
        dry_run=options.pop("dry_run"),
        batch_size=options.pop("batch_size"),
        allow_gap=options.pop("allow_gap"),
    )


def check_partition(partition: int, partitions: int) -> None:
    """``--partition`` must name one of the deployment's streams."""
    if not 0 <= partition < partitions:
        raise UsageProblem(
            f"--partition: {partition} is out of range: there are {partitions} partitions "
            f"(0..{partitions - 1})"
        )


async def _run(
    conn: Connection,
    sink_options: dict[str, Any],
    options: ReplayOptions,
    line: _ProgressLine | None,
    timeout: float,  # noqa: ASYNC109 - a retry budget handed down, not a cancel scope
) -> ReplayResult:
    async with open_clients(conn) as (redis, db):
        sink = MongoSink(db, prefix=conn.prefix, **sink_options)
        try:
            keys = await verified_keys(redis, conn)
            if options.partition is not None:
                check_partition(options.partition, keys.partitions)
            return await run_replay(
                redis, sink, keys, options, progress=line, retry_for=timeout,
                on_retry=RetryNotice(conn, line),
            )  # fmt: skip
        except PartitionCountMismatch as exc:
            raise click.ClickException(str(exc)) from None
        except TimeoutError as exc:
            raise Unavailable(
                f"MongoDB ({redact_url(conn.mongo_url)}) kept failing for --timeout "
                f"{format_seconds(timeout)}: {str(exc).rstrip('.')}. What was applied stays "
                "applied; running the same command again is safe."
            ) from None
        except (RedisError, RedisClusterException, PyMongoError, OSError) as exc:
            reason = f"{str(exc).rstrip('.')}{cluster_hint(exc)}"
            raise click.ClickException(
                f"replay stopped: {_server_of(exc, conn)}{type(exc).__name__}: {reason}. "
                "What was applied stays applied; running the same command again is safe."
            ) from None


def _server_of(exc: BaseException, conn: Connection) -> str:
    """``Redis (<url>): `` or ``MongoDB (<url>): ``, redacted: which server failed."""
    if isinstance(exc, RedisError | RedisClusterException):
        return f"Redis ({redact_url(conn.redis_url)}): "
    if isinstance(exc, PyMongoError):
        return f"MongoDB ({redact_url(conn.mongo_url)}): "
    return ""


def _refuse(exc: HistoryGapError, options: ReplayOptions, as_json: bool) -> None:
    click.echo(f"Refusing to replay: {exc}", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "error": "history_gap",
                    "message": str(exc),
                    "dry_run": options.dry_run,
                    "since": str(exc.since),
                    "resume_from": str(exc.resume_from),
                    "resume_from_time": iso(exc.resume_from.ms),
                    "gaps": [g.as_dict() for g in exc.gaps],
                },
                sort_keys=True,
            )
        )


class _ProgressLine:
    """``[####....] 1,200/~3,000 records 40% 850/s ETA 0:02``, redrawn at most 10 times a second."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.latest: tuple[int, int] = (0, 0)
        self.drawn = False

    def note(self, text: str) -> None:
        """A line of its own (a retry notice) above the progress line."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()
        if self.drawn:
            self._draw(time.monotonic())

    def __call__(self, done: int, total: int) -> None:
        self.latest = (done, total)
        now = time.monotonic()
        if now - self.last_drawn >= 0.1:
            self._draw(now)

    def _draw(self, now: float) -> None:
        done, total = self.latest
        text = render(snapshot(done, total, now - self.started))
        self.stream.write(f"\r{text}\x1b[K")
        self.stream.flush()
        self.last_drawn = now
        self.drawn = True

    def close(self) -> None:
        """Draw the final count and end the line (if one was started)."""
        if not self.drawn:
            return
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()


def _partitions_text(result: ReplayResult) -> str:
    parts = result.partitions
    if parts == list(range(parts[0], parts[-1] + 1)) and len(parts) > 1:
        return f"partitions {parts[0]}-{parts[-1]}"
    return "partition " + ", ".join(map(str, parts))


def _already_note(result: ReplayResult) -> str:
    n = result.already_dead_lettered
    return f"  ({n:,} more already dead-lettered; no new letter)" if n else ""


def refusal_line(added: int, already: int) -> str:
    """Say which refused records got a new letter and which had one already."""
    see = "see `writebehind dlq list`."
    if not already:
        return f"{_were(added)} refused by MongoDB and dead-lettered: {see}"
    if not added:
        return (
            f"{_were(already)} refused by MongoDB and already dead-lettered "
            f"(no new letter written): {see}"
        )
    return (
        f"{_were(added + already)} refused by MongoDB: {added:,} dead-lettered now, "
        f"{already:,} already dead-lettered (no new letter written): {see}"
    )


def _were(count: int) -> str:
    return f"{count:,} record was" if count == 1 else f"{count:,} records were"


def summary(result: ReplayResult) -> str:
    """The end-of-run report for people."""
    options = result.options
    since, until = options.range.since, options.range.until
    report = result.report
    dry = options.dry_run
    where = options.collection or "all collections"
    end = describe(until) if until is not None else "the end of each stream"
    lines = [
        ("Dry run, nothing was written. Would replay" if dry else "Replayed")
        + f" {result.records:,} records ({where}; {_partitions_text(result)}) "
        f"from {describe(since)} to {end} in {result.seconds:.1f} s."
    ]
    applied = ", ".join(
        f"{_VERBS[o][1 if dry else 0]} {report.total(o):,}"
        for o in (Outcome.INSERTED, Outcome.UPDATED, Outcome.DELETED)
    )
    rows = [
        ("would apply" if dry else "applied", f"{result.applied:,}  ({applied})"),
        (
            "skipped as newer",
            f"{report.total(Outcome.SKIPPED_NEWER):,}  (MongoDB holds that version or newer)",
        ),
        ("coalesced", f"{report.total(Outcome.COALESCED):,}  (covered by a newer record)"),
        ("dead-lettered", f"{result.dead_lettered:,}" + _already_note(result)),
        ("malformed", f"{result.malformed:,}"),
    ]
    lines += [f"  {name:<17} {value}" for name, value in rows]
    for name, counts in sorted(report.counts.items()):
        verb = 1 if dry else 0
        parts = [f"{_VERBS[o][verb]} {counts[o.value]:,}" for o in _VERBS]
        parts.append(f"coalesced {counts[Outcome.COALESCED.value]:,}")
        if counts[Outcome.FAILED.value]:
            parts.append(f"dead-lettered {counts[Outcome.FAILED.value]:,}")
        lines.append(f"  {name}: " + ", ".join(parts))
        examples = report.examples[name]
        for o in _VERBS:
            if examples.get(o.value):
                lines.append(f"      {_VERBS[o][1]}, e.g.: {', '.join(examples[o.value])}")
    if result.malformed:
        lines.append(
            f"Malformed entries (not writebehind records; skipped): "
            f"{', '.join(result.malformed_examples)}"
            + (" ..." if result.malformed > len(result.malformed_examples) else "")
        )
    if result.refused:
        lines.append(refusal_line(result.dead_lettered, result.already_dead_lettered))
    for gap in result.gaps:
        lines.append(
            f"Warning: partition {gap.partition} lost records after SINCE (trimmed); "
            f"it was replayed from {iso(gap.resume_from.ms)} (--allow-gap)."
        )
    if result.missing_streams:
        lines.append(
            "Note: no stream in Redis for partition "
            + ", ".join(map(str, result.missing_streams))
            + " (nothing written there yet, or Redis lost it)."
        )
    return "\n".join(lines)
