"""A connection redis-py closed under a call in flight is a lost connection, not a bug.

CI saw it on Redis Cluster with redis-py 8.1 during a failover: a ``set``
failed with ``AttributeError: 'NoneType' object has no attribute
'writelines'`` raised in redis-py's connection code, where the SDK promises
``CacheUnavailable``. These tests raise such errors from code compiled as
redis-py's own connection and parser modules (and from a real redis-py
connection whose stream is gone), whatever redis-py version is installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import redis
from redis.asyncio import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from writebehind.core.errors import CacheUnavailable
from writebehind.core.replies import as_lost_connection, is_torn_connection, is_transient
from writebehind.core.shielded import ShieldedCalls
from writebehind.sdk.reading.breaker import CircuitBreaker
from writebehind.sdk.reading.guard import RedisGuard
from writebehind.worker.startup import unavailable_server

pytestmark = pytest.mark.anyio

REDIS_DIR = os.path.dirname(redis.__file__)


def raised_in(path: str, error: str) -> Callable[[], None]:
    """A function whose body runs as if it were code of the file ``path``."""
    namespace: dict[str, object] = {}
    source = f"def fail():\n    {error}\n"
    exec(compile(source, path, "exec"), namespace)
    return namespace["fail"]  # type: ignore[return-value]


def caught(fail: Callable[[], None]) -> BaseException:
    try:
        fail()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


WRITER_GONE = "None.writelines([b'PING'])"


def test_an_attribute_error_in_redis_connection_code_is_a_torn_connection() -> None:
    exc = caught(raised_in(os.path.join(REDIS_DIR, "asyncio", "connection.py"), WRITER_GONE))
    assert isinstance(exc, AttributeError)
    assert is_torn_connection(exc)
    assert is_transient(exc)
    assert unavailable_server(exc) == "redis"
    lost = as_lost_connection(exc)
    assert isinstance(lost, RedisConnectionError)
    assert "writelines" in str(lost)


def test_a_type_error_in_the_reply_parser_is_a_torn_connection() -> None:
    parser = os.path.join(REDIS_DIR, "_parsers", "resp2.py")
    assert is_torn_connection(caught(raised_in(parser, "(lambda: None)()()")))


def test_the_same_error_in_our_own_code_is_a_bug() -> None:
    exc = caught(raised_in(__file__, WRITER_GONE))
    assert not is_torn_connection(exc)
    assert not is_transient(exc)
    assert as_lost_connection(exc) is exc


def test_an_error_in_redis_code_other_than_connections_is_a_bug() -> None:
    exc = caught(raised_in(os.path.join(REDIS_DIR, "commands", "core.py"), WRITER_GONE))
    assert not is_torn_connection(exc)


async def test_a_real_connection_without_its_stream_fails_as_a_lost_connection() -> None:
    # A redis-py connection that was never connected has no writer, as one
    # closed by another task has: sending on it directly fails inside redis-py
    # (an AttributeError before redis-py 8.2, a ConnectionError since).
    conn = Connection()
    with pytest.raises(RedisConnectionError):
        await ShieldedCalls().run(conn._send_packed_command([b"PING"]))


async def test_the_guard_reports_a_torn_connection_as_cache_unavailable() -> None:
    fail = raised_in(os.path.join(REDIS_DIR, "asyncio", "connection.py"), WRITER_GONE)

    async def torn() -> None:
        fail()

    guard = RedisGuard(CircuitBreaker(5, 1.0), "t", ShieldedCalls())
    with pytest.raises(CacheUnavailable) as raised:
        await guard.call(torn, 1.0, "a write")
    assert raised.value.written is None  # the outcome is unknown
    assert isinstance(raised.value.__cause__, RedisConnectionError)


async def test_other_errors_pass_through_the_shield_unchanged() -> None:
    async def bug() -> None:
        raise AttributeError("a bug of ours")

    with pytest.raises(AttributeError, match="a bug of ours"):
        await ShieldedCalls().run(bug())
