"""`writebehind worker` option handling that needs no servers."""

from __future__ import annotations

from click.testing import CliRunner

from writebehind.cli import main

SECRET_ENV = {
    "WRITEBEHIND_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0",
    "WRITEBEHIND_MONGO_URL": "mongodb://app:hunter2@127.0.0.1:1",
    "WRITEBEHIND_DATABASE": "app",
}


def test_options_come_from_environment_variables_and_are_validated() -> None:
    result = CliRunner().invoke(main, ["worker"], env={**SECRET_ENV, "WRITEBEHIND_BATCH_SIZE": "0"})
    assert result.exit_code == 2
    assert "--batch-size (WRITEBEHIND_BATCH_SIZE): Input should be greater than 0" in result.output
    assert "hunter2" not in result.output


def test_bad_flags_are_named_each() -> None:
    result = CliRunner().invoke(
        main,
        ["worker", "--batch-size", "0", "--linger", "-1"],
        env={**SECRET_ENV, "WRITEBEHIND_BATCH_SIZE": "100"},
    )
    assert result.exit_code == 2
    assert "--batch-size (WRITEBEHIND_BATCH_SIZE)" in result.output  # the flag won over 100
    assert "--linger (WRITEBEHIND_LINGER)" in result.output


def test_settings_the_worker_alone_checks_are_named_too() -> None:
    result = CliRunner().invoke(
        main, ["worker", "--retention", "100", "--tombstone-grace", "10"], env=SECRET_ENV
    )
    assert result.exit_code == 2
    assert "--tombstone-grace (WRITEBEHIND_TOMBSTONE_GRACE)" in result.output
    assert "hunter2" not in result.output


def test_help_never_shows_secrets_from_the_environment() -> None:
    result = CliRunner().invoke(main, ["worker", "--help"], env=SECRET_ENV)
    assert result.exit_code == 0
    assert "--drain-timeout" in result.output
    assert "hunter2" not in result.output


def test_missing_connection_settings_are_named() -> None:
    result = CliRunner().invoke(main, ["worker"], env=dict.fromkeys(SECRET_ENV))
    assert result.exit_code == 2
    assert "--redis-url" in result.output


def test_help_names_what_each_flag_takes() -> None:
    """Counts show N, optional ones too (``--concurrency`` is unset by default: adaptive)."""
    out = CliRunner().invoke(main, ["worker", "--help"]).output
    assert "--concurrency N " in out
    assert "--batch-size N " in out
    assert "--claim-idle DURATION" in out
    assert "--concurrency TEXT" not in out
