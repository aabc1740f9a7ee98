"""Polling with a deadline: how tests wait for something to become true."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 30.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Return the first truthy result of ``probe()``; fail the test after ``timeout``."""
    deadline = anyio.current_time() + timeout
    last: T | None = None
    while anyio.current_time() < deadline:
        last = await probe()
        if last:
            return last
        await anyio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value {last!r}")
