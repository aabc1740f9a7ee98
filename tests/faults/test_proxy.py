"""The fault proxy's modes, against a tiny echo server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from tests.support.proxy import Proxy

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """Echoes every chunk; also records what it received (to see what a blackhole forwards)."""
    received: list[bytes] = []

    async def handle(stream: SocketStream) -> None:
        async with stream:
            try:
                async for chunk in stream:
                    received.append(chunk)
                    await stream.send(chunk)
            except (anyio.BrokenResourceError, OSError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield listener.extra(SocketAttribute.local_port), received
        tg.cancel_scope.cancel()


async def until(check: Callable[[], bool], within: float = 5) -> None:
    """Poll ``check`` until true, failing after ``within`` seconds."""
    with anyio.fail_after(within):
        while True:
            if check():
                return
            await anyio.sleep(0.01)


async def closed_by_peer(s: SocketStream, within: float = 5) -> bool:
    """True when the proxy ends the connection (EOF or reset) within ``within`` s."""
    with anyio.fail_after(within):
        try:
            await s.send(b"?")
            await s.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            return True
    return False


async def refused(port: int) -> bool:
    try:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    except OSError:
        return True
    await stream.aclose()
    return False


async def roundtrip(port: int, data: bytes) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as s:
        await s.send(data)
        got = b""
        while len(got) < len(data):
            got += await s.receive()
        return got


async def test_pass_and_latency() -> None:
    async with echo_server() as (port, _), Proxy("127.0.0.1", port, latency=0.2) as proxy:
        assert await roundtrip(proxy.port, b"hello") == b"hello"
        proxy.set_mode("latency")
        start = anyio.current_time()
        assert await roundtrip(proxy.port, b"slow") == b"slow"
        assert anyio.current_time() - start >= 0.4  # one delay each way
        proxy.set_mode("pass")
        assert await roundtrip(proxy.port, b"again") == b"again"
    assert proxy.connections == 0


async def test_drop_closes_and_refuses_until_healed() -> None:
    async with echo_server() as (port, _), Proxy("127.0.0.1", port) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
            await s.send(b"x")
            assert await s.receive() == b"x"
            proxy.set_mode("drop")
            assert await closed_by_peer(s)
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
            assert await closed_by_peer(s)
        await until(lambda: proxy.connections == 0)
        proxy.set_mode("pass")
        assert await roundtrip(proxy.port, b"back") == b"back"


@pytest.mark.parametrize("forward", [True, False])
async def test_blackhole_never_replies(forward: bool) -> None:
    async with (
        echo_server() as (port, received),
        Proxy("127.0.0.1", port, forward_in_blackhole=forward) as proxy,
    ):
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
            proxy.set_mode("blackhole")
            await s.send(b"lost")
            if forward:
                await until(lambda: b"".join(received) == b"lost")
            with anyio.move_on_after(0.3) as scope:
                await s.receive()
            assert scope.cancelled_caught  # the client hangs until its own timeout
            proxy.set_mode("pass")  # the blackholed connection is closed on heal
            assert await closed_by_peer(s)
        if not forward:
            assert received == []
        assert await roundtrip(proxy.port, b"healed") == b"healed"


async def test_stop_closes_everything() -> None:
    async with echo_server() as (port, _):
        async with (
            Proxy("127.0.0.1", port) as proxy,
            await anyio.connect_tcp("127.0.0.1", proxy.port) as s,
        ):
            await s.send(b"x")
            assert await s.receive() == b"x"
            await until(lambda: proxy.connections == 1)
            listen_port = proxy.port
        assert proxy.connections == 0
        assert await refused(listen_port)


async def test_strand_silences_current_connections_for_good() -> None:
    async with echo_server() as (port, received), Proxy("127.0.0.1", port) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as s:
            await s.send(b"x")
            assert await s.receive() == b"x"
            assert proxy.strand() == 1
            await s.send(b"lost")
            with anyio.move_on_after(0.3) as scope:
                await s.receive()
            assert scope.cancelled_caught  # open, never answering, never closed
            assert proxy.connections == 1
            assert b"".join(received) == b"x"
            # New connections pass.
            assert await roundtrip(proxy.port, b"fresh") == b"fresh"
        await until(lambda: proxy.connections == 0)  # the client closing ends it
