"""A TCP forwarder on 127.0.0.1 for network faults (the ``network`` trials and others).

``async with Proxy(host, port) as proxy:`` (or ``await tg.start(proxy.run)``)
listens on a free port of 127.0.0.1 and forwards every connection to
``host:port``. ``proxy.set_mode(...)``:

- ``pass``: forward both ways.
- ``latency``: forward, sleeping ``proxy.latency`` seconds before each chunk,
  in both directions.
- ``drop``: close every current connection, and close each new one as soon as
  it is accepted, until the mode changes.
- ``blackhole``: accept and read; requests are forwarded upstream when
  ``forward_in_blackhole`` (so the write may be applied) or discarded; replies
  are never delivered, so the client waits for its own timeout.

``proxy.hold_replies(marker)`` holds back, until ``release_replies()``, every
reply on a connection whose last request contained ``marker`` (``held`` counts
them): the server has run the command, the client has not heard. A MongoDB
``find`` that read a document, answered late.

``proxy.strand()`` leaves every current connection open but silent for good,
in both directions, while new connections are forwarded as the mode says: a
peer that vanished without closing (a dropped NAT entry, a host gone), which
only a client-side timeout can detect.

Leaving ``blackhole`` closes every connection that lived through it: bytes
were discarded on them, so their framing can no longer be trusted. Leaving the
block (or ``stop()``, or cancelling ``run``) closes the listener and every
connection.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Literal

import anyio
from anyio.abc import ByteStream, SocketAttribute, SocketStream, TaskGroup, TaskStatus

Mode = Literal["pass", "latency", "drop", "blackhole"]
MODES: tuple[Mode, ...] = ("pass", "latency", "drop", "blackhole")
CHUNK = 65536


class Proxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        latency: float = 0.05,
        forward_in_blackhole: bool = True,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.latency = latency
        self.forward_in_blackhole = forward_in_blackhole
        self.mode: Mode = "pass"
        self.on_request: Callable[[bytes], None] | None = None
        """Called with each request chunk before the mode applies (to switch on a command)."""
        self.port = 0
        self.held = 0
        """Replies held back by ``hold_replies`` so far."""
        self._hold: tuple[bytes, anyio.Event] | None = None
        self._scopes: set[anyio.CancelScope] = set()
        self._stranded: set[anyio.CancelScope] = set()
        self._tg: TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def connections(self) -> int:
        """Connections being forwarded right now."""
        return len(self._scopes)

    def set_mode(self, mode: Mode) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}")
        previous, self.mode = self.mode, mode
        if mode == "drop" or (previous == "blackhole" and mode != "blackhole"):
            self.close_connections()

    def strand(self) -> int:
        """Make every current connection silent for good (never closed); how many."""
        self._stranded |= self._scopes
        return len(self._scopes)

    def hold_replies(self, marker: bytes) -> None:
        """Hold every reply to a request containing ``marker`` until ``release_replies()``."""
        self._hold = (marker, anyio.Event())

    def release_replies(self) -> None:
        if self._hold is not None:
            self._hold[1].set()
            self._hold = None

    def close_connections(self) -> None:
        for scope in list(self._scopes):
            scope.cancel()

    async def run(self, *, task_status: TaskStatus[Proxy] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen and forward until cancelled or ``stop()``; for ``TaskGroup.start``."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        with anyio.CancelScope() as self._scope:
            async with listener, anyio.create_task_group() as tg:
                self.port = listener.extra(SocketAttribute.local_port)
                tg.start_soon(listener.serve, self._handle)
                task_status.started(self)
        # Cancelling the task group cancelled every connection's task; they close their sockets.

    def stop(self) -> None:
        """Close the listener and every connection (``run`` returns)."""
        if self._scope is not None:
            self._scope.cancel()

    async def __aenter__(self) -> Proxy:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self._tg.start(self.run)
        except BaseException as exc:
            await self._tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self.stop()
        return await self._tg.__aexit__(exc_type, exc, tb)

    async def _handle(self, client: SocketStream) -> None:
        async with client:
            if self.mode == "drop":
                return
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    try:
                        upstream = await anyio.connect_tcp(self.target_host, self.target_port)
                    except OSError:
                        return
                    last: list[bytes] = [b""]  # this connection's last request chunk
                    async with upstream, anyio.create_task_group() as tg:
                        tg.start_soon(self._pump, client, upstream, True, scope, last)
                        tg.start_soon(self._pump, upstream, client, False, scope, last)
                finally:
                    self._scopes.discard(scope)
                    self._stranded.discard(scope)

    async def _pump(
        self,
        src: ByteStream,
        dst: ByteStream,
        request: bool,
        scope: anyio.CancelScope,
        last: list[bytes],
    ) -> None:
        """Copy ``src`` to ``dst`` as the mode says; either side closing ends the connection."""
        try:
            while True:
                data = await src.receive(CHUNK)
                if scope in self._stranded:
                    continue
                if request:
                    last[0] = data
                if request and self.on_request is not None:
                    self.on_request(data)
                hold = self._hold
                if not request and hold is not None and hold[0] in last[0]:
                    self.held += 1
                    await hold[1].wait()
                if self.mode == "latency":
                    await anyio.sleep(self.latency)
                if self.mode == "blackhole" and not (request and self.forward_in_blackhole):
                    continue
                if self.mode == "drop":
                    break
                await dst.send(data)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
        finally:
            scope.cancel()
