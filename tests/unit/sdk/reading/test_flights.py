"""In-process stampede control without servers: one load, shielded, errors shared not kept."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from writebehind.core.errors import ClientClosed
from writebehind.sdk.reading.flights import Flights, wait_shielded

pytestmark = pytest.mark.anyio


class Loader:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self, keys: list[str]) -> dict[str, Any]:
        self.calls.append(keys)
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {key: f"doc-{key}" for key in keys}


async def _get(flights: Flights, load: Loader, key: str) -> Any:
    return await wait_shielded(flights.start([key], load)[key])


async def test_concurrent_misses_share_one_load() -> None:
    flights, load = Flights(), Loader()
    callers = [asyncio.create_task(_get(flights, load, "k")) for _ in range(20)]
    await anyio.wait_all_tasks_blocked()
    load.release.set()
    assert await asyncio.gather(*callers) == ["doc-k"] * 20
    assert load.calls == [["k"]]


async def test_cancelling_the_first_caller_cancels_only_itself() -> None:
    flights, load = Flights(), Loader()
    first = asyncio.create_task(_get(flights, load, "k"))
    await anyio.wait_all_tasks_blocked()
    second = asyncio.create_task(_get(flights, load, "k"))
    await anyio.wait_all_tasks_blocked()
    first.cancel()
    await anyio.wait_all_tasks_blocked()
    load.release.set()
    assert await second == "doc-k"
    assert first.cancelled()
    assert load.calls == [["k"]]


async def test_an_error_reaches_every_caller_and_is_not_kept() -> None:
    flights, load = Flights(), Loader()
    load.fail = RuntimeError("mongodb down")
    callers = [asyncio.create_task(_get(flights, load, "k")) for _ in range(3)]
    await anyio.wait_all_tasks_blocked()
    load.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and str(r) == "mongodb down" for r in results)
    load.fail = None
    assert await _get(flights, load, "k") == "doc-k"  # loaded again
    assert len(load.calls) == 2


async def test_a_batch_joins_running_loads_and_starts_the_rest() -> None:
    flights, load = Flights(), Loader()
    running = flights.start(["a"], load)
    both = flights.start(["a", "b"], load)
    assert both["a"] is running["a"]
    load.release.set()
    assert [await wait_shielded(both[k]) for k in ("a", "b")] == ["doc-a", "doc-b"]
    assert load.calls == [["a"], ["b"]]


async def test_per_key_errors_from_a_batch() -> None:
    flights = Flights()

    async def load(keys: list[str]) -> dict[str, Any]:
        return {"a": "doc-a", "b": LookupError("b failed")}

    futures = flights.start(["a", "b"], load)
    assert await wait_shielded(futures["a"]) == "doc-a"
    with pytest.raises(LookupError):
        await wait_shielded(futures["b"])


async def test_close_cancels_what_is_running_and_its_callers_get_client_closed() -> None:
    flights, load = Flights(), Loader()
    future = flights.start(["k"], load)["k"]
    await anyio.wait_all_tasks_blocked()
    await flights.close()
    assert not future.cancelled()  # a typed error for its callers, not a bare cancellation
    with pytest.raises(ClientClosed):
        await wait_shielded(future)
    with pytest.raises(ClientClosed):
        flights.start(["k"], load)
    ran: list[str] = []

    async def refresh() -> None:
        ran.append("ran")

    flights.refresh_once("k", refresh)  # closed: not started
    await asyncio.sleep(0.01)
    assert ran == []


async def test_one_refresh_per_key_at_a_time() -> None:
    flights = Flights()
    release = asyncio.Event()
    runs: list[str] = []

    def refresh(key: str) -> Any:
        async def run() -> None:
            runs.append(key)
            await release.wait()

        return run

    for _ in range(5):
        flights.refresh_once("k", refresh("k"))
    flights.refresh_once("j", refresh("j"))  # another key: its own refresh
    await anyio.wait_all_tasks_blocked()
    assert runs == ["k", "j"] and flights.refreshing == {"k", "j"}
    release.set()
    await anyio.wait_all_tasks_blocked()
    assert flights.refreshing == set()
    flights.refresh_once("k", refresh("k"))  # the next one, once the first ended
    await anyio.wait_all_tasks_blocked()
    assert runs == ["k", "j", "k"]
    await flights.close()
