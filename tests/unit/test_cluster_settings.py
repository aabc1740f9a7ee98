"""``--redis-cluster`` / ``WRITEBEHIND_REDIS_CLUSTER``: one setting, on every command."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli
from writebehind.core.redis_client import connect, is_cluster, socket_timeout
from writebehind.settings import load_settings


def test_the_variable_and_the_flag_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({}).redis_cluster is False
    monkeypatch.setenv("WRITEBEHIND_REDIS_CLUSTER", "true")
    assert load_settings({}).redis_cluster is True
    assert load_settings({"redis_cluster": False}).redis_cluster is False  # the flag wins


@pytest.mark.parametrize(
    "command",
    [["worker"], ["stats"], ["check"], ["replay"], ["dlq", "list"], ["partitions", "set"]],
)
def test_every_command_takes_the_flag(command: list[str]) -> None:
    shown = run_cli(*command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--redis-cluster / --no-redis-cluster" in shown.stdout
    assert "WRITEBEHIND_REDIS_CLUSTER" in shown.stdout


def test_a_cluster_client_keeps_the_timeouts_of_a_single_node_client() -> None:
    client = connect("redis://127.0.0.1:1/0", cluster=True)
    assert is_cluster(client)
    assert socket_timeout(client) == 10.0
    assert not is_cluster(connect("redis://127.0.0.1:1/0"))
