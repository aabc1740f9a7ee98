"""``writebehind invalidate``: usage errors are one clear line, before any connection."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from writebehind.cli import main

CONNECTION = [
    "--redis-url", "redis://127.0.0.1:1/0",
    "--mongo-url", "mongodb://127.0.0.1:1",
    "--database", "nowhere",
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--collection", "a$b"], "--collection: a collection name may not contain '$'"),
        (["--collection", "system.x"], "--collection: 'system.' collections are reserved"),
        (["--fence-ttl", "0"], "--fence-ttl: must be more than 0"),
        (["--fence-ttl", "soon"], "--fence-ttl: not a duration"),
        (["--metrics-address", "nowhere"], "--metrics-address"),
    ],
)
def test_usage_errors_exit_2_before_connecting(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["invalidate", *args, *CONNECTION])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_invalidate_is_registered() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "invalidate" in result.output
