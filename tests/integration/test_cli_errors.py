"""Every mistake an operator makes on the command line: one ``Error:`` line, no traceback,
the documented exit status (2 before connecting, 1 for failures after it).

Each row runs the real ``writebehind`` command in a subprocess, against the test
servers or against ports where nothing listens.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync

from tests.support.cli import one_error_line, run_cli
from tests.support.servers import RedisServer
from writebehind.settings import Settings

NOWHERE_REDIS = "redis://127.0.0.1:1/0"
NOWHERE_MONGO = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"

# Every command, with the arguments it needs besides the connection flags.
COMMANDS: dict[str, list[str]] = {
    "worker": ["worker"],
    "check": ["check"],
    "stats": ["stats"],
    "replay": ["replay", "--since", "0"],
    "dlq list": ["dlq", "list"],
    "dlq show": ["dlq", "show", "0/1-0"],
    "dlq replay": ["dlq", "replay", "--all"],
    "dlq purge": ["dlq", "purge", "--all", "--yes"],
    "invalidate": ["invalidate"],
    "partitions show": ["partitions", "show"],
    "partitions set": ["partitions", "set", "4"],
    "partitions seed": ["partitions", "seed"],
}


def connection(redis_url: str = NOWHERE_REDIS, mongo_url: str = NOWHERE_MONGO) -> list[str]:
    return ["--redis-url", redis_url, "--mongo-url", mongo_url, "--database", "clierr"]


def fails(args: list[str], code: int, *needles: str, env: dict[str, str] | None = None) -> str:
    result = run_cli(*args, env=env)
    line = one_error_line(result)
    assert result.returncode == code, result.stdout + result.stderr
    for needle in needles:
        assert needle in line, line
    return line


# -- 1. bad URLs, for every command ---------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "url",
    ["http://cache.example:6379/0", "redis://127.0.0.1:6379/0?socket_timeout=abc"],
    ids=["http-scheme", "socket-timeout-abc"],
)
def test_a_redis_url_the_driver_refuses_is_named(command: str, url: str) -> None:
    fails(
        [*COMMANDS[command], *connection(redis_url=url)],
        2,
        "--redis-url (WRITEBEHIND_REDIS_URL)",
    )


@pytest.mark.parametrize("command", ["worker", "check", "replay", "dlq replay", "invalidate"])
def test_a_mongo_url_the_driver_refuses_is_named(command: str) -> None:
    line = fails(
        [*COMMANDS[command], *connection(mongo_url="http://app:s3cret@db.example/x")],
        2,
        "--mongo-url (WRITEBEHIND_MONGO_URL)",
    )
    assert "s3cret" not in line


def test_a_bad_url_in_a_variable_is_named_and_never_echoed() -> None:
    env = {
        "WRITEBEHIND_REDIS_URL": "http://:hunter2@cache.example:6379/0",
        "WRITEBEHIND_MONGO_URL": NOWHERE_MONGO,
        "WRITEBEHIND_DATABASE": "x",
    }
    line = fails(["stats"], 2, "--redis-url (WRITEBEHIND_REDIS_URL)", env=env)
    assert "hunter2" not in line


# -- 1. bad worker options --------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--write-concern", "0"], "--write-concern (WRITEBEHIND_WRITE_CONCERN)"),
        (["--write-concern", "-1"], "--write-concern (WRITEBEHIND_WRITE_CONCERN)"),
        (["--database", "a.b"], "--database (WRITEBEHIND_DATABASE)"),
        (["--database", "has space"], "--database (WRITEBEHIND_DATABASE)"),
        (["--tombstone-grace", "10"], "--tombstone-grace (WRITEBEHIND_TOMBSTONE_GRACE)"),
        (["--linger", "5 parsecs"], "--linger (WRITEBEHIND_LINGER)"),
        (["--linger-ms", "soon"], "--linger-ms (WRITEBEHIND_LINGER_MS)"),
        (["--claim-idle-ms", "-5"], "--claim-idle-ms (WRITEBEHIND_CLAIM_IDLE_MS)"),
        (["--batch-size", "many"], "--batch-size (WRITEBEHIND_BATCH_SIZE)"),
        (["--partitions", "0"], "--partitions (WRITEBEHIND_PARTITIONS)"),
        (["--prefix", "a:b"], "--prefix (WRITEBEHIND_PREFIX)"),
        (["--log-level", "loud"], "--log-level (WRITEBEHIND_LOG_LEVEL)"),
        (["--metrics-address", "9108"], "--metrics-address (WRITEBEHIND_METRICS_ADDRESS)"),
        (["--clean-ttl", "1.5s"], "--clean-ttl (WRITEBEHIND_CLEAN_TTL)"),
    ],
)
def test_bad_worker_options_are_refused_before_connecting(flags: list[str], named: str) -> None:
    fails(["worker", *connection(), *flags], 2, named)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("WRITEBEHIND_TOMBSTONE_GRACE", "10", "--tombstone-grace (WRITEBEHIND_TOMBSTONE_GRACE)"),
        ("WRITEBEHIND_WRITE_CONCERN", "0", "--write-concern (WRITEBEHIND_WRITE_CONCERN)"),
        ("WRITEBEHIND_LINGER_MS", "x", "--linger-ms (WRITEBEHIND_LINGER_MS)"),
    ],
)
def test_the_same_checks_apply_to_variables(variable: str, value: str, named: str) -> None:
    fails(["worker", *connection()], 2, named, env={variable: value})


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_metrics_port_is_one_line(taken_port: int) -> None:
    # Nothing listens at the servers' addresses either: the port is checked first.
    fails(
        ["worker", *connection(), "--metrics-address", f"127.0.0.1:{taken_port}"],
        1,
        "--metrics-address (WRITEBEHIND_METRICS_ADDRESS)",
        f"127.0.0.1:{taken_port}",
    )


# -- 1. servers that do not answer (tools; the worker waits: test_worker_waits.py) ---


@pytest.mark.parametrize("command", ["stats", "dlq list", "dlq show", "dlq purge"])
def test_a_redis_that_does_not_answer_is_one_line_naming_it(command: str) -> None:
    fails([*COMMANDS[command], *connection()], 1, "Redis (redis://127.0.0.1:1/0)")


@pytest.mark.parametrize("command", ["stats", "dlq list", "dlq purge", "replay"])
def test_a_redis_cluster_that_does_not_answer_is_one_line_naming_it(command: str) -> None:
    # redis-py's RedisClusterException is no RedisError: it was an "internal error".
    fails(
        [*COMMANDS[command], *connection(), "--redis-cluster"], 1, "Redis (redis://127.0.0.1:1/0)"
    )


@pytest.mark.parametrize("command", ["stats", "partitions show", "dlq replay", "invalidate"])
def test_redis_cluster_on_a_plain_redis_is_one_line_saying_so(
    command: str, redis_server: RedisServer, mongo_url: str
) -> None:
    args = [*COMMANDS[command], *connection(redis_server.url, mongo_url), "--redis-cluster"]
    fails(args, 1, f"Redis ({redis_server.url})", "Cluster mode is not enabled",
          "leave out --redis-cluster (WRITEBEHIND_REDIS_CLUSTER)")  # fmt: skip


def test_json_logs_do_not_bring_the_traceback_back() -> None:
    fails(["stats", *connection(), "--log-format", "json"], 1, "Redis (redis://127.0.0.1:1/0)")


# -- 1. replay reads the partition count from Redis --------------------------------


@pytest.fixture
def four_partitions(redis_factory: Callable[..., RedisServer]) -> str:
    server = redis_factory()
    client = redis_sync.Redis.from_url(server.url)
    client.hset("{wb}:meta", "partitions", 4)
    client.close()
    return server.url


def test_replay_partition_out_of_the_recorded_range(four_partitions: str, mongo_url: str) -> None:
    fails(
        ["replay", "--since", "0", "--partition", "4", *connection(four_partitions, mongo_url)],
        2,
        "4 is out of range: there are 4 partitions",
    )


def test_replay_partition_in_the_recorded_range(four_partitions: str, mongo_url: str) -> None:
    args = ["--since", "0", "--partition", "3", "--json", *connection(four_partitions, mongo_url)]
    result = run_cli("replay", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"partitions": [3]' in result.stdout


def test_stats_needs_only_redis(four_partitions: str) -> None:
    result = run_cli("stats", "--redis-url", four_partitions, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"partition": 3' in result.stdout  # the recorded count, not the default 16


# -- 1. every option of every command, through the same path ---------------------


def _value_options() -> list[tuple[str, str]]:
    """(command, flag) for every shown option whose value the settings model checks."""
    from writebehind.cli import main

    found = []
    for name, args in COMMANDS.items():
        command: Any = main
        for part in args[: 2 if " " in name else 1]:
            command = command.commands[part]
        for param in command.params:
            if getattr(param, "hidden", False) or getattr(param, "is_flag", False):
                continue
            if param.name in FREE_TEXT or param.param_type_name != "option":
                continue
            found.append((name, param.opts[0]))
    return found


# Any text is a valid value of these.
FREE_TEXT = ("consumer", "redis_url", "mongo_url", "group", "collection", "collections")


@pytest.mark.parametrize(("command", "flag"), _value_options())
def test_every_checked_option_of_every_command_names_itself(command: str, flag: str) -> None:
    # In-process (CliRunner) to keep the sweep cheap; the table above runs subprocesses.
    from click.testing import CliRunner

    from writebehind.cli import main

    field = flag.removeprefix("--").replace("-", "_")
    result = CliRunner().invoke(main, [*COMMANDS[command], *connection(), flag, "no good!"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = [x for x in result.output.splitlines() if x.startswith("Error: ")]
    assert flag in line, line
    help_text = " ".join(result.output.split())
    if field in Settings.model_fields and f"env WRITEBEHIND_{field.upper()}" in _help(command):
        # A setting: named both ways it can be given.
        assert f"{flag} (WRITEBEHIND_{field.upper()})" in line, help_text


def _help(command: str) -> str:
    from click.testing import CliRunner

    from writebehind.cli import main

    result = CliRunner().invoke(main, [*COMMANDS[command][:2], "--help"])
    return " ".join(result.output.split())


# -- 1. the commands whose options are not settings --------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["partitions", "set", "4", *connection(), "--quiet", "-5"], "--quiet"),
        (["partitions", "set", "4", *connection(), "--worker-idle", "-1"], "--worker-idle"),
        (["demo", "--workers", "0"], "--workers"),
        (["demo", "--documents", "0"], "--documents"),
        (["demo", "--producers", "0"], "--producers"),
        (["demo", "--duration", "-1"], "--duration"),
    ],
)
def test_bad_values_of_other_options_are_refused(args: list[str], named: str) -> None:
    fails(args, 2, named)


@pytest.mark.parametrize(
    ("env", "code", "named"),
    [
        ({"WRITEBEHIND_REDIS_URL": "http://:pw@cache.example:6379/0"}, 2, "WRITEBEHIND_REDIS_URL"),
        ({"WRITEBEHIND_MONGO_URL": "http://u:pw@db.example/"}, 2, "WRITEBEHIND_MONGO_URL"),
        ({"WRITEBEHIND_REDIS_URL": NOWHERE_REDIS}, 1, "Redis (redis://127.0.0.1:1/0)"),
        ({"WRITEBEHIND_MONGO_URL": "mongodb://u:pw@127.0.0.1:1/"}, 1, "MongoDB (mongodb://u:***@"),
    ],
    ids=["redis-url", "mongo-url", "redis-down", "mongodb-down"],
)
def test_the_demo_on_servers_of_yours_that_it_cannot_use(
    env: dict[str, str], code: int, named: str, tmp_path: Path
) -> None:
    line = fails(["demo"], code, named, env={**env, "TMPDIR": str(tmp_path)})
    assert ":pw@" not in line
    # No server of its own left running (a bad URL used to leak one), no log folder.
    assert processes_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def processes_under(folder: Path) -> list[str]:
    """Command lines of the processes whose working directory or arguments are in ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            found.append(cmdline)
    return found


def test_a_taken_metrics_port_of_the_invalidator_is_one_line(
    taken_port: int, redis_server: RedisServer, mongo_url: str
) -> None:
    address = f"127.0.0.1:{taken_port}"
    args = ["invalidate", *connection(redis_server.url, mongo_url), "--metrics-address", address]
    fails(args, 1, "--metrics-address", address)


def test_the_worker_documents_exit_0_after_its_drain_timeout() -> None:
    # test_shutdown_bound.py: a drain cut short by --drain-timeout exits 0.
    flat = " ".join(run_cli("worker", "--help").stdout.split())
    zero = flat.split("Exit status: 0", 1)[1].split("; 1 ", 1)[0]
    assert "--drain-timeout" in zero, flat


def test_the_exit_statuses_are_documented() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    flat = " ".join(result.stdout.split())
    for status in ("0 done", "1 failed", "2 bad usage or configuration", "5 a server"):
        assert status in flat, flat
