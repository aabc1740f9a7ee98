"""A tiny HTTP endpoint for ``/metrics``, ``/healthz`` and ``/readyz``.

Three fixed GET routes do not justify a web framework; this answers one
request per connection and closes it, which is all Prometheus and probes need.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import structlog
from anyio.abc import SocketStream, TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from writebehind.core.errors import InvalidAddress

log = structlog.get_logger("writebehind.http")

Check = Callable[[], Awaitable[tuple[bool, str]]]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class HealthEndpoints:
    registry: CollectorRegistry
    healthy: Check
    """Liveness: the process runs and its loops are not stuck."""
    ready: Check
    """Readiness: Redis and MongoDB answer."""


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:9108``) into its parts; raises ``InvalidAddress``."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidAddress(f"metrics address must be host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _respond(stream: SocketStream, status: int, body: bytes, content_type: str) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    await stream.send(head.encode("ascii") + body)


async def _handle(stream: SocketStream, endpoints: HealthEndpoints) -> None:
    async with stream:
        request = b""
        with anyio.move_on_after(5):
            while b"\r\n\r\n" not in request and len(request) < 8192:
                chunk = await stream.receive(4096)
                if not chunk:
                    break
                request += chunk
        method, _, rest = request.partition(b" ")
        path = rest.partition(b" ")[0].split(b"?")[0].decode("latin-1")
        if method != b"GET":
            await _respond(stream, 405, b"GET only\n", "text/plain")
            return
        if path == "/metrics":
            await _respond(stream, 200, generate_latest(endpoints.registry), CONTENT_TYPE_LATEST)
            return
        check = {"/healthz": endpoints.healthy, "/readyz": endpoints.ready}.get(path)
        if check is None:
            await _respond(stream, 404, b"not found\n", "text/plain")
            return
        ok, detail = await check()
        await _respond(stream, 200 if ok else 503, detail.encode() + b"\n", "text/plain")


async def serve(
    address: str,
    endpoints: HealthEndpoints,
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port through ``task_status``."""
    host, port = parse_address(address)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    log.info("metrics_listening", address=f"{host}:{bound}")
    task_status.started(bound)

    async def handle(stream: SocketStream) -> None:
        # A client that goes away mid-request is no concern of ours.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await _handle(stream, endpoints)

    async with listener:
        await listener.serve(handle)
