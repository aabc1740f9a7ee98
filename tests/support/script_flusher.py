"""A script cache emptied before every script call: ``NOSCRIPT`` at every attempt.

``FlushingProxy`` forwards to a Redis server through ``tests.support.proxy.Proxy``
and runs ``SCRIPT FLUSH`` on the server, directly, before forwarding any request
that carries ``EVALSHA``. Every ``EVALSHA`` is then refused with ``NOSCRIPT``,
including one re-sent right after redis-py loaded its script (a single call) or
checked it was loaded (a pipeline): the window of a restart, a failover or a
``SCRIPT FLUSH``, made certain. Only a call that falls back to ``EVAL`` with the
script's text (``core.scripts.run_scripts``/``call_script``) goes through.
"""

from __future__ import annotations

from types import TracebackType

import redis

from tests.support.proxy import Proxy
from tests.support.servers import RedisServer


class FlushingProxy:
    """``async with FlushingProxy(server) as flushing:``; clients connect to ``flushing.url``."""

    def __init__(self, server: RedisServer) -> None:
        self._proxy = Proxy("127.0.0.1", server.port)
        self._direct = redis.Redis.from_url(server.url)
        self.flushes = 0
        """Requests with ``EVALSHA`` seen (each after a ``SCRIPT FLUSH``)."""

    @property
    def url(self) -> str:
        return f"redis://{self._proxy.host}:{self._proxy.port}/0"

    def _before(self, request: bytes) -> None:
        # A blocking call on the event loop: the request must wait for the flush.
        if b"EVALSHA" in request:
            self._direct.script_flush()
            self.flushes += 1

    async def __aenter__(self) -> FlushingProxy:
        await self._proxy.__aenter__()
        self._proxy.on_request = self._before
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._proxy.__aexit__(exc_type, exc, tb)
        finally:
            self._direct.close()
