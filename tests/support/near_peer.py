"""Another application process with a near cache, reading one document in a loop.

    python -m tests.support.near_peer REDIS_URL MONGO_URL DATABASE DOC_ID MAX_STALE

Prints ``ready`` once its change feed is caught up and the document is held,
then reads the document every ~0.5 ms until a line arrives on stdin, printing
``seen N`` each time a read returns another value of the document's ``n``
field than the read before, and then prints one JSON line: for each value of
``n``, when the first read that returned it ended and when the last read that
returned it began (``time.monotonic()``, shared by the processes of one
machine), and its near-cache counters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import anyio
from prometheus_client import REGISTRY

from tests.support.processes import REPO_ROOT, wait_stopped
from writebehind import ReadPolicy, WriteBehind
from writebehind.sdk.near import NearCache


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def main(argv: list[str]) -> None:
    redis_url, mongo_url, database, doc_id, max_stale = argv
    near = NearCache(max_entries=100, ttl=60.0, max_stale=float(max_stale))
    seen: dict[str, list[float]] = {}
    async with WriteBehind(
        redis_url=redis_url,
        mongo_url=mongo_url,
        database=database,
        prefix="t",
        partitions=4,
        reads=ReadPolicy(near=near, redis_timeout=0.3),
    ) as wb:
        users = wb.collection("users")
        await users.get(doc_id)
        with anyio.fail_after(30):
            while not wb.near.servable(near):  # noqa: ASYNC110 (the feed sets no event)
                await anyio.sleep(0.01)
        await users.get(doc_id)
        print("ready", flush=True)
        stop = anyio.Event()

        async def wait_stdin() -> None:
            await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            stop.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_stdin)
            previous = None
            while not stop.is_set():
                began = time.monotonic()
                doc = await users.get(doc_id)
                n = str(None if doc is None else doc.get("n"))
                span = seen.setdefault(n, [time.monotonic(), began])
                span[1] = began
                if n != previous:
                    print(f"seen {n}", flush=True)
                    previous = n
                await anyio.sleep(0.0005)
            tg.cancel_scope.cancel()
        # Reported before closing: closing waits for calls to Redis, which may be frozen.
        report: dict[str, Any] = {
            "seen": seen,
            "near_hits": _sample(
                "writebehind_sdk_near_reads_total", collection="users", outcome="hit"
            ),
            "resumes": _sample("writebehind_sdk_near_resyncs_total", mode="resume"),
            "empties": _sample("writebehind_sdk_near_resyncs_total", mode="empty"),
            "stale": _sample(
                "writebehind_sdk_near_reads_total", collection="users", outcome="stale"
            ),
        }
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])


class NearPeer:
    """The test's handle on a ``near_peer`` subprocess; ``close()`` always kills it."""

    def __init__(
        self, redis_url: str, mongo_url: str, database: str, doc_id: str, max_stale: float
    ) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        args = [redis_url, mongo_url, database, doc_id, str(max_stale)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.near_peer", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )

    async def ready(self, within: float = 30.0) -> None:
        assert self.proc.stdout is not None
        with anyio.fail_after(within):
            line = await anyio.to_thread.run_sync(self.proc.stdout.readline)
        if line.strip() != "ready":
            raise AssertionError(f"near peer did not start: {line!r} {self.stderr()}")

    async def _line(self) -> str:
        assert self.proc.stdout is not None
        # Abandoned on a timeout: the peer prints only on a change, so a read may wait for ever.
        line: str = await anyio.to_thread.run_sync(
            self.proc.stdout.readline, abandon_on_cancel=True
        )
        if not line:
            raise AssertionError(f"near peer ended: {self.stderr()}")
        return line.strip()

    async def wait_seen(self, n: str, within: float = 30.0) -> float:
        """Wait until a read returns ``n`` after a read that returned something else.

        Returns when the test saw it (``time.monotonic()``); fails the test after ``within`` s.
        """
        try:
            with anyio.fail_after(within):
                while await self._line() != f"seen {n}":
                    pass
        except TimeoutError:
            raise AssertionError(f"the near peer returned no n={n} within {within}s") from None
        return time.monotonic()

    async def finish(self, within: float = 30.0) -> dict[str, Any]:
        """Stop the read loop; the peer's report."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        with anyio.fail_after(within):
            line = await self._line()
            while line.startswith("seen "):
                line = await self._line()
        report: dict[str, Any] = json.loads(line)
        return report

    async def pause(self) -> None:
        """Freeze the peer (``SIGSTOP``) and return once the kernel says it is stopped."""
        self.proc.send_signal(signal.SIGSTOP)
        await wait_stopped(self.proc.pid)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()[-2000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.resume()
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
