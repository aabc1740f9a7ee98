"""A TCP delay line: every chunk arrives ``latency`` seconds after it was sent, both ways.

Unlike ``tests/support/proxy.py`` (which sleeps before forwarding each chunk,
so a chunk also waits for the one before it), chunks here are timestamped on
arrival and delivered at arrival + latency: a delay, not a bandwidth limit. It
runs in its own process so that it takes no time from the measured event loop.

    python -m benchmarks.delay_proxy TARGET_PORT LATENCY_SECONDS   (prints its port)
"""

from __future__ import annotations

import asyncio
import sys
import time


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(65536):
            queue.put_nowait((time.monotonic() + latency, chunk))
    except ConnectionError:
        pass
    queue.put_nowait((0.0, b""))
    await task


async def serve(target_port: int, latency: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pump(reader, up_writer, latency),
            _pump(up_reader, writer, latency),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2])))
