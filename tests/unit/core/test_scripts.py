"""Unit tests for the pure helpers of writebehind.core.scripts (no Redis is started)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    NoScriptError,
    OutOfMemoryError,
    ResponseError,
)

from writebehind.core.errors import InvalidVersion, RedisOutOfMemory, WriteBehindError
from writebehind.core.scripts import (
    ABSENT,
    BacklogRefused,
    LetterOutcome,
    WriteOutcome,
    map_script_error,
    parse_letter_reply,
    parse_write_reply,
    written_version,
)
from writebehind.core.version import Version


@pytest.mark.parametrize(
    ("reply", "version"),
    [
        ([1, b"5-1"], Version(5, 1)),
        ([1, "5-1"], Version(5, 1)),
        ((1, b"1718000000000-10"), Version(1718000000000, 10)),
        ([b"1", b"0-1"], Version(0, 1)),
    ],
)
def test_parse_written(reply: Any, version: Version) -> None:
    outcome = parse_write_reply(reply)
    assert outcome == WriteOutcome(True, version, None)
    assert outcome.written is True
    assert outcome.version == version
    assert outcome.current is None


@pytest.mark.parametrize("reply", [[0, b"-"], [0, "-"], [0, ABSENT.encode()]])
def test_parse_not_written_absent(reply: Any) -> None:
    outcome = parse_write_reply(reply)
    assert outcome.written is False
    assert outcome.version is None
    assert outcome.current is None


@pytest.mark.parametrize(("reply", "current"), [([0, b"7-2"], "7-2"), ([0, "5-10"], "5-10")])
def test_parse_not_written_current(reply: Any, current: str) -> None:
    outcome = parse_write_reply(reply)
    assert outcome == WriteOutcome(False, None, current)
    assert isinstance(outcome.current, str)


@pytest.mark.parametrize("reply", [[1, b"garbage"], [1, b"-"], [1, b""]])
def test_parse_written_rejects_bad_version(reply: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_write_reply(reply)


@pytest.mark.parametrize(("text", "backlog"), [("WBBACKLOG 12", 12), ("WBBACKLOG 0", 0)])
def test_backlog_error(text: str, backlog: int) -> None:
    mapped = map_script_error(ResponseError(text))
    assert isinstance(mapped, BacklogRefused)
    assert mapped.backlog == backlog


def test_out_of_memory() -> None:
    exc = OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    mapped = map_script_error(exc)
    assert isinstance(mapped, RedisOutOfMemory)
    assert isinstance(mapped, WriteBehindError)
    assert "maxmemory" in str(mapped)


@pytest.mark.parametrize(
    "exc",
    [
        ResponseError("ERR something else"),
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ResponseError("ERR WBBACKLOG 12"),
        NoScriptError("No matching script"),
        RedisConnectionError("connection lost"),
        RuntimeError("boom"),
        ValueError("bad"),
        KeyboardInterrupt(),
    ],
)
def test_other_errors_pass_through(exc: BaseException) -> None:
    assert map_script_error(exc) is exc


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ([1, b"9-0"], LetterOutcome(True, "9-0")),
        ([0, b"7-3"], LetterOutcome(False, "7-3")),
        ((b"0", "7-3"), LetterOutcome(False, "7-3")),
    ],
)
def test_parse_letter_reply(reply: Any, outcome: LetterOutcome) -> None:
    assert parse_letter_reply(reply) == outcome


@pytest.mark.parametrize("value", [b"1718000000000-3", "5-0"])
def test_written_version_is_the_parsed_version_for_the_document(value: Any) -> None:
    version = written_version([1, value], "users", 42, True)
    assert version == parse_write_reply([1, value]).version
    assert (version.collection, version.doc_id, version.deleted) == ("users", 42, True)


def test_written_version_refuses_a_bad_id() -> None:
    with pytest.raises(InvalidVersion):
        written_version([1, b"nope"], "users", 1)
