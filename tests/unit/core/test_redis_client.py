"""Redis clients made from URLs carry timeouts; a worker refuses one that breaks its reads."""

from __future__ import annotations

import inspect

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from writebehind.core.errors import ConfigurationError
from writebehind.core.redis_client import (
    SOCKET_TIMEOUT,
    connect,
    socket_timeout,
    verify_read_timeout,
)


def test_connect_sets_timeouts_and_keepalive() -> None:
    options = connect("redis://127.0.0.1:1/0").connection_pool.connection_kwargs
    assert options["socket_timeout"] == SOCKET_TIMEOUT
    assert options["socket_connect_timeout"] == 5.0
    assert options["socket_keepalive"] is True
    assert options["health_check_interval"] == 30


def test_url_options_win_over_defaults_and_arguments() -> None:
    redis = connect("redis://127.0.0.1:1/0?socket_timeout=30", socket_timeout=3)
    assert socket_timeout(redis) == 30.0
    assert socket_timeout(connect("redis://127.0.0.1:1/0", socket_timeout=3)) == 3.0


def test_a_plain_client_reports_its_effective_timeout() -> None:
    default = inspect.signature(AbstractConnection.__init__).parameters["socket_timeout"].default
    assert socket_timeout(Redis.from_url("redis://127.0.0.1:1/0")) == default
    assert socket_timeout(Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=None)) is None


@pytest.mark.parametrize(("timeout", "block_ms"), [(1.5, 500), (2.0, 1000), (0.1, 100)])
def test_blocking_reads_must_end_before_the_socket_timeout(timeout: float, block_ms: int) -> None:
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        verify_read_timeout(connect("redis://127.0.0.1:1/0", socket_timeout=timeout), block_ms)


def test_blocking_reads_check_passes() -> None:
    verify_read_timeout(connect("redis://127.0.0.1:1/0"), 500)
    none = Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=None)
    verify_read_timeout(none, 60_000)  # no timeout at all: nothing to break
