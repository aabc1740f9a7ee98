"""Plain HTTP GETs against a worker's /metrics, /healthz and /readyz."""

from __future__ import annotations

import anyio


async def http_get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of ``GET path`` on 127.0.0.1:``port``."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while True:
            try:
                data += await stream.receive()
            except anyio.EndOfStream:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def sample(metrics: str, name: str) -> float:
    """The value of the first sample of ``name`` in a /metrics text."""
    for line in metrics.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")
