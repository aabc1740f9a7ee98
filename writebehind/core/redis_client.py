"""Redis clients made from a URL: a connection that stops answering fails, never hangs.

Without a socket timeout (redis-py before 8 sets none), a connection whose
peer vanished without a FIN (a NAT or firewall dropping state, a host gone)
blocks its caller until the OS gives up, hours later: a worker waits for
ever on its XREADGROUP while its entries sit pending. With one, the call
fails, the client reconnects, and the worker's own retry and claim paths take
over. Options in the URL's query (``?socket_timeout=30``) win over these
defaults.
"""

from __future__ import annotations

import inspect
from typing import Any

from redis.asyncio import Redis

from writebehind.core.errors import ConfigurationError

SOCKET_TIMEOUT = 10.0
CLIENT_DEFAULTS: dict[str, Any] = {
    "socket_timeout": SOCKET_TIMEOUT,
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
    # Ping a connection that sat idle this long before using it again.
    "health_check_interval": 30,
}


def connect(url: str, **options: Any) -> Redis:
    """``Redis.from_url`` with the defaults above (``options``, then the URL, override them)."""
    return Redis.from_url(url, **{**CLIENT_DEFAULTS, **options})


def socket_timeout(redis: Redis) -> float | None:
    """The client's read timeout: its own setting, else its connection class's default.

    redis-py 8 defaults to 5 s; earlier versions to none at all.
    """
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
