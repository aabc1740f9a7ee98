"""How an exception that escaped a command becomes one line and a status (cli.failures)."""

from __future__ import annotations

import click
import pytest
from pymongo.errors import ServerSelectionTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError

from writebehind.cli.failures import (
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    SERVERS,
    Unavailable,
    UsageProblem,
    explain,
    scrub,
)
from writebehind.core.errors import ConfigurationError, PartitionCountMismatch


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (UsageProblem("--x (WRITEBEHIND_X): bad"), EXIT_USAGE, "--x (WRITEBEHIND_X): bad"),
        (Unavailable("MongoDB kept failing"), EXIT_UNAVAILABLE, "kept failing"),
        (ConfigurationError("allkeys-lru would evict writes"), 1, "allkeys-lru"),
        (PartitionCountMismatch(4, 8), 1, "Redis records 8"),
        (RedisConnectionError("Error 111 connecting"), 1, "Redis (redis://h:6379/0)"),
        (ServerSelectionTimeoutError("h:1: refused"), 1, "MongoDB (mongodb://h:1/)"),
        (OSError(98, "Address already in use"), 1, "Address already in use"),
        (KeyError("boom"), 1, "internal error: KeyError"),
        (click.UsageError("Missing option '--since'."), 2, "Missing option"),
    ],
)
def test_one_line_and_a_status(exc: BaseException, code: int, needle: str) -> None:
    SERVERS.update(redis="redis://h:6379/0", mongodb="mongodb://h:1/")
    explained = explain(exc)
    assert explained.code == code
    assert needle in explained.line
    assert "\n" not in explained.line


def test_the_cause_is_found_inside_a_task_group() -> None:
    group = BaseExceptionGroup("tasks", [RedisConnectionError("gone")])
    assert "Redis" in explain(group).line and explain(group).code == 1


def test_scrub_hides_the_url_and_its_password() -> None:
    url = "redis://:hunter2@cache.example:6379/0"
    text = scrub(f"cannot parse {url}; password hunter2", url)
    assert "hunter2" not in text and "cache.example" in text
