"""Unit tests for the dlq and stats commands' formatting and usage errors (no servers).

Usage errors are raised before any connection is made, so the commands run here
in-process with ``click.testing.CliRunner`` and unreachable server URLs.
"""

from __future__ import annotations

import sys
from typing import Any

import bson
import pytest
from click.testing import CliRunner

from writebehind.cli import main
from writebehind.cli.dlq import format_letter, format_list, format_redrive
from writebehind.cli.stats import format_stats
from writebehind.cli.tools import format_duration, plural, render_table, root_cause, shorten
from writebehind.sink.classify import ErrorInfo, Failure
from writebehind.tools.dead_letters import LetterResult, RedriveReport
from writebehind.tools.letters import decode_letter
from writebehind.tools.stream_stats import (
    ConsumerStats,
    PartitionStats,
    StreamStats,
    summarise_consumers,
)

CONNECTION = [
    "--redis-url", "redis://127.0.0.1:1/0",
    "--mongo-url", "mongodb://127.0.0.1:1",
    "--database", "nowhere",
    "--partitions", "4",
]  # fmt: skip


def run(*args: str) -> Any:
    return CliRunner().invoke(main, [*args, *CONNECTION])


def letter(partition: int = 1, entry: str = "1718000000600-0", **fields: Any) -> Any:
    values: dict[bytes, bytes] = {
        b"op": b"set",
        b"c": b"people",
        b"d": bson.encode({"_id": "u1", "nickname": "no name"}),
        b"ov": b"1718000000000-0",
        b"source_id": b"1718000000000-0",
        b"error_kind": b"permanent",
        b"error_code": b"121",
        b"error": b"Plan executor error :: caused by :: Document failed validation "
        + b"because " * 20,
        b"deliveries": b"2",
        b"failed_at_ms": b"1718000000500",
        b"consumer": b"w1",
    }
    values.update({k.encode(): v for k, v in fields.items()})
    return decode_letter(partition, entry, values)


# usage errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dlq", "replay"], "give the dead-letter IDs to act on, or --all"),
        (["dlq", "purge"], "give the dead-letter IDs to act on, or --all"),
        (["dlq", "replay", "--all", "1/1-0"], "not both"),
        (["dlq", "purge", "--all", "1/1-0"], "not both"),
        (["dlq", "replay", "1/1-0", "--collection", "x"], "--collection only goes with --all"),
        (["dlq", "replay", "1/1-0", "1-0"], "not a dead-letter ID: '1-0'"),
        (["dlq", "purge", "4/1-0"], "partitions are 0 to 3"),
        (["dlq", "purge", "--all"], "--all deletes every dead letter for good; add --yes"),
        (["dlq", "purge", "--all", "--collection", "x"], "of collection 'x' for good"),
        (["dlq", "show", "abc"], "not a dead-letter ID: 'abc'"),
    ],
)
def test_usage_errors_exit_2_before_connecting(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_commands_are_registered() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "dlq" in result.output and "stats" in result.output
    sub = CliRunner().invoke(main, ["dlq", "--help"])
    for name in ("list", "show", "replay", "purge"):
        assert name in sub.output


# tables and text


def test_render_table_aligns_columns() -> None:
    out = render_table(["NAME", "N"], [["a", 1], ["long name", 1234], ["b", None]])
    assert out.splitlines() == [
        "NAME          N",
        "a             1",
        "long name  1234",
        "b",
    ]


def test_shorten_flattens_and_truncates() -> None:
    assert shorten("a\n  b", 10) == "a b"
    assert shorten("x" * 20, 10) == "xxxxxxx..."
    assert len(shorten("y" * 200, 60)) == 60


def test_root_cause_and_plural() -> None:
    message = "Plan executor error during update :: caused by :: Document failed validation"
    assert root_cause(message) == "Document failed validation"
    assert root_cause("E11000 duplicate key") == "E11000 duplicate key"
    assert (plural(1, "dead letter"), plural(0, "dead letter"), plural(2, "letter")) == (
        "1 dead letter",
        "0 dead letters",
        "2 letters",
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.04, "0.0s"), (12.345, "12.3s"), (185, "3m05s"), (7380, "2h03m"),
     (352800, "4d02h")],
)  # fmt: skip
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_list_shows_what_failed_and_why() -> None:
    out = format_list([letter(), letter(3, "1718000000700-0", c=b"pets")])
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "COLLECTION", "DOCUMENT", "VERSION", "OP", "TRIES", "FAILED", "AT", "ERROR",
    ]  # fmt: skip
    assert lines[1].split()[:6] == ["1/1718000000600-0", "people", "'u1'", "1718000000000-0",
                                    "set", "2"]  # fmt: skip
    assert "2024-06-10T06:13:20.500Z" in lines[1]
    assert "[121] Document failed validation" in lines[1]
    assert lines[1].endswith("...")
    assert lines[-1] == "2 dead letters."
    assert format_list([]) == "No dead letters."


def test_format_letter_has_the_full_error_and_the_document() -> None:
    out = format_letter(letter())
    assert "Dead letter 1/1718000000600-0" in out
    assert "because " * 20 in out  # not shortened
    assert "error code:    121" in out
    assert '"nickname": "no name"' in out
    assert "cannot replay" not in out
    broken = format_letter(letter(d=b"\x01"))
    assert "cannot replay: the document is not decodable" in broken
    assert "<not decodable: 1 bytes>" in broken


def test_format_replay_says_what_happened_to_each_letter() -> None:
    report = RedriveReport(dry_run=False)
    kept_as = letter(2, "1718000000900-0")
    report.results += [
        LetterResult(letter(), "inserted", True),
        LetterResult(
            letter(2, "1718000000800-0"),
            "failed",
            False,
            ErrorInfo(Failure.PERMANENT, 121, "still invalid"),
            kept_as.id,
        ),
    ]
    out = format_redrive(report)
    assert "inserted  removed" in out
    assert f"kept as {kept_as.id}" in out and "[121] still invalid" in out
    assert out.splitlines()[-1] == "2 dead letters: inserted 1, failed 1, removed 1."
    dry = RedriveReport(dry_run=True, results=[LetterResult(letter(), "inserted", False)])
    assert format_redrive(dry).startswith("Dry run")
    assert "would be removed" in format_redrive(dry)


# stats


def partition(n: int, **values: Any) -> PartitionStats:
    return PartitionStats(n, group_exists=True, **values)


def sample_stats() -> StreamStats:
    parts = (
        partition(
            0,
            stream_length=10,
            pending=3,
            lag=2,
            oldest_pending_age=95.0,
            dead_letters=1,
            consumers=(ConsumerStats("a", 2, 500), ConsumerStats("b", 1, 90_000)),
        ),
        partition(
            1, stream_length=4, lag=4, lag_exact=False, consumers=(ConsumerStats("a", 0, 20),)
        ),
        PartitionStats(2, stream_length=2, lag=2, dead_letters=5),
    )
    return StreamStats("writebehind", parts, 1_000_000, summarise_consumers(parts))


def test_stats_totals_and_consumers() -> None:
    stats = sample_stats()
    assert (stats.pending, stats.lag, stats.dead_letters, stats.stream_length) == (3, 8, 6, 16)
    assert not stats.lag_exact
    assert stats.oldest_pending_age == 95.0
    assert [(c.name, c.pending, c.idle_ms, c.partitions) for c in stats.consumers] == [
        ("a", 2, 20, (0, 1)),
        ("b", 1, 90_000, (0,)),
    ]
    body = stats.as_dict()
    assert (body["pending"], body["lag"], body["dead_letters"]) == (3, 8, 6)
    assert [p["partition"] for p in body["partitions"]] == [0, 1, 2]
    assert body["consumers"][0] == {"name": "a", "pending": 2, "idle_ms": 20, "partitions": [0, 1]}
    assert body["partitions"][0]["consumers"][1] == {"name": "b", "pending": 1, "idle_ms": 90_000}


def test_format_stats_table() -> None:
    out = format_stats(sample_stats())
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["0"][1:6] == ["10", "3", "2", "1m35s", "1"]
    assert rows["1"][3] == ">=4"
    assert rows["2"][-2:] == ["no", "group"]
    assert rows["total"][1:4] == ["16", "3", ">=8"]
    assert rows["a"] == ["a", "2", "0.0s", "0,1"]
    assert rows["b"] == ["b", "1", "1m30s", "0"]
    empty = StreamStats("g", (PartitionStats(0),), 0)
    assert "No consumers." in format_stats(empty)


@pytest.mark.parametrize(("answer", "code"), [("n\n", 1), ("\n", 1)])
def test_purge_all_on_a_terminal_asks_first(
    monkeypatch: pytest.MonkeyPatch, answer: str, code: int
) -> None:
    # Declining aborts before connecting: the URL points nowhere.
    # (``writebehind.cli.dlq`` names the click group; the module is in sys.modules.)
    monkeypatch.setattr(sys.modules["writebehind.cli.dlq"], "_interactive", lambda: True)
    result = CliRunner().invoke(main, ["dlq", "purge", "--all", *CONNECTION], input=answer)
    assert result.exit_code == code, result.output
    assert "Delete every dead letter for good, without re-driving it? [y/N]" in result.output
    assert "Aborted" in result.output
