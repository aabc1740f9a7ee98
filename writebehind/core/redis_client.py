"""Redis clients made from a URL: a connection that stops answering fails, never hangs.

Without a socket timeout (redis-py before 8 sets none), a connection whose
peer vanished without a FIN (a NAT or firewall dropping state, a host gone)
blocks its caller until the OS gives up, hours later: a worker waits for
ever on its XREADGROUP while its entries sit pending. With one, the call
fails, the client reconnects, and the worker's own retry and claim paths take
over. Options in the URL's query (``?socket_timeout=30``) win over these
defaults.

A burst of calls queues for a connection instead of failing: the pool is a
``BlockingConnectionPool`` of ``POOL_SIZE`` connections (URL ``max_connections``)
whose callers wait up to ``POOL_TIMEOUT`` seconds (URL ``timeout``), then get
``ConnectionPoolExhausted``. redis-py's default pool refuses the 101st call
at once with ``MaxConnectionsError``.

A dropped connection is retried ``RETRIES`` times with jittered exponential
backoff (redis-py 8 gives ``from_url`` clients none). A write re-sent after a
lost reply carries the same nonce, so the write script returns its first
result instead of writing twice; the network fault trial measures this.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import FullJitterBackoff
from redis.exceptions import AuthenticationError, AuthorizationError, MaxConnectionsError
from redis.exceptions import ConnectionError as RedisConnectionError

from writebehind.core.errors import ConfigurationError, ConnectionPoolExhausted

SOCKET_TIMEOUT = 10.0
CLIENT_DEFAULTS: dict[str, Any] = {
    "socket_timeout": SOCKET_TIMEOUT,
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
    # Ping a connection that sat idle this long before using it again.
    "health_check_interval": 30,
}


POOL_SIZE = 50
"""Connections a URL-made client opens at most (URL query ``max_connections``)."""
POOL_TIMEOUT = 10.0
"""Seconds a call waits for a free connection (URL query ``timeout``)."""
RETRIES = 3
"""Re-sends of a call whose connection failed (a reset, a timeout), with backoff."""


T = TypeVar("T")

REFUSED = (AuthenticationError, AuthorizationError)
"""redis-py raises these as ``ConnectionError``s, but they are answers: Redis is there and
refuses the password (or the ACL user's rights). Retrying cannot help, and treating them
as an outage would hide a configuration mistake behind timeouts and fallbacks."""


class _Refused(Exception):
    """Carries a ``REFUSED`` error past ``Retry`` (not a ``RedisError``: never retried)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _AnswerAwareRetry(Retry):
    """redis-py's ``Retry``, except that a refused password or permission is not retried."""

    async def call_with_retry(
        self, do: Callable[[], Awaitable[T]], fail: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> T:
        async def once() -> T:
            try:
                return await do()
            except REFUSED as exc:
                raise _Refused(exc) from None

        try:
            return await super().call_with_retry(once, fail, *args, **kwargs)
        except _Refused as refused:
            raise refused.error from None


def default_retry() -> Retry:
    """3 retries, jittered exponential backoff from 50 ms, capped at 1 s; none for a
    refused password or permission (``REFUSED``)."""
    return _AnswerAwareRetry(FullJitterBackoff(cap=1.0, base=0.05), RETRIES)


def connect(url: str, *, cluster: bool = False, **options: Any) -> Redis:
    """A client on a blocking pool with the defaults above.

    ``options``, then the URL's query, override the defaults (``retry=None``
    turns retries off). ``cluster=True``: a ``RedisCluster`` (see
    ``connect_cluster``), typed as ``Redis`` since it answers the same commands.
    """
    if cluster:
        return connect_cluster(url, **options)
    kwargs: dict[str, Any] = {
        **CLIENT_DEFAULTS,
        "max_connections": POOL_SIZE,
        "timeout": POOL_TIMEOUT,
        "retry": default_retry(),
        **{k: v for k, v in options.items() if not (k == "max_connections" and v is None)},
    }
    pool = BlockingConnectionPool.from_url(url, **kwargs)
    return Redis.from_pool(pool)


def connect_cluster(url: str, **options: Any) -> Redis:
    """A ``RedisCluster`` client from the URL of any node, with the defaults above.

    Each node gets its own pool of ``POOL_SIZE`` connections (``max_connections``).
    redis-py follows ``MOVED``/``ASK`` redirections and retries ``CLUSTERDOWN``
    and connection errors itself, re-reading the slot map
    (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/).
    The blocking pool's wait (``timeout``) has no cluster equivalent and is dropped.
    """
    kwargs: dict[str, Any] = {
        **CLIENT_DEFAULTS,
        "max_connections": POOL_SIZE,
        "retry": default_retry(),
        **{
            k: v
            for k, v in options.items()
            if not (k == "max_connections" and v is None) and k != "timeout"
        },
    }
    return cast(Redis, RedisCluster.from_url(url, **kwargs))


def is_cluster(redis: Any) -> bool:
    """Whether ``redis`` is a Redis Cluster client (passed in, or made by ``connect_cluster``)."""
    return isinstance(redis, RedisCluster)


def pool_exhausted(exc: BaseException) -> bool:
    """redis-py's "no connection free" errors: the call was never sent.

    ``MaxConnectionsError`` from a default pool, or the ``ConnectionError``
    a ``BlockingConnectionPool`` raises when its wait ends.
    """
    if isinstance(exc, MaxConnectionsError):
        return True
    return isinstance(exc, RedisConnectionError) and str(exc) == "No connection available."


def exhausted() -> ConnectionPoolExhausted:
    """The typed error for a call that found no free connection in time."""
    return ConnectionPoolExhausted(
        "no Redis connection became free in time; nothing was sent. Raise the pool's "
        "max_connections or timeout (URL query options), or send fewer calls at once"
    )


class _TypedPoolErrors:
    """Turns redis-py's pool-exhaustion errors into ``ConnectionPoolExhausted``.

    A class, not a ``@contextmanager`` generator: it is entered around every
    SDK call, and a generator context manager cost ~5 µs of a ~100 µs call.
    Holds no state, so one instance serves every call (nested, concurrent).
    """

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is not None and isinstance(exc, RedisConnectionError) and pool_exhausted(exc):
            raise exhausted() from exc


_TYPED_POOL_ERRORS = _TypedPoolErrors()


def typed_pool_errors() -> AbstractContextManager[None]:
    """Turn redis-py's pool-exhaustion errors into ``ConnectionPoolExhausted``."""
    return _TYPED_POOL_ERRORS


def pool_limits(redis: Redis) -> tuple[int, float]:
    """The client's pool: how many connections at most, and how long (seconds) a call
    may wait for a free one (0 for redis-py's default pool, which fails at once).

    A Redis Cluster client keeps a pool per node: no client-wide limit is known.
    """
    if is_cluster(redis):
        return 2**31, float("inf")
    pool = redis.connection_pool
    size = int(getattr(pool, "max_connections", 0) or 2**31)
    wait = getattr(pool, "timeout", None) if isinstance(pool, BlockingConnectionPool) else 0.0
    return size, float(wait) if wait is not None else float("inf")


def socket_timeout(redis: Redis) -> float | None:
    """The client's read timeout: its own setting, else its connection class's default.

    redis-py 8 defaults to 5 s; earlier versions to none at all.
    """
    if is_cluster(redis):
        value = redis.get_connection_kwargs().get("socket_timeout")  # type: ignore[no-untyped-call]
        return None if value is None else float(value)
    pool = redis.connection_pool
    if "socket_timeout" in pool.connection_kwargs:
        value = pool.connection_kwargs["socket_timeout"]
        return None if value is None else float(value)
    for cls in pool.connection_class.__mro__:  # the class that declares the parameter
        init = vars(cls).get("__init__")
        if init is None:
            continue
        parameter = inspect.signature(init).parameters.get("socket_timeout")
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return None if parameter.default is None else float(parameter.default)
    return None


def verify_read_timeout(redis: Redis, block_ms: int) -> None:
    """A blocking read must return before the socket timeout, or every idle read fails.

    Raises ``ConfigurationError`` when the timeout is not over ``block_ms`` by more than 1 s.
    """
    timeout = socket_timeout(redis)
    if timeout is not None and timeout <= block_ms / 1000 + 1:
        raise ConfigurationError(
            f"the Redis socket_timeout ({timeout:g} s) must exceed read_block_ms "
            f"({block_ms} ms) by more than 1 s"
        )
