"""A ``writebehind worker`` that kills itself with SIGKILL at a chosen point of its work.

python -m tests.support.crashpoints POINT N [worker options...]

A ``kill -9`` from outside lands wherever the worker happens to be; most of the
time that is waiting on a read. These points aim it at the windows that
matter, the Nth time the worker reaches one:

- ``after_write``: a ``bulk_write`` has returned, its records are not yet
  acknowledged (MongoDB has them, Redis still says pending).
- ``before_dead_letter``: a batch holding a dead letter is about to be
  finished: nothing of it acknowledged, nothing moved.
- ``during_dead_letter``: the finishing pipeline (acks and the dead-letter
  move) has been handed to the connection; the process dies before the reply.
- ``after_dead_letter``: the move is done and replied to; the process dies
  before anything else happens.

Before dying it writes ``{"event": "crashpoint", ...}`` to stdout (the worker's
log), so a test can tell a planned death from a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from redis.asyncio.connection import AbstractConnection

from writebehind.cli import main as cli_main
from writebehind.core.scripts import DEAD_LETTER
from writebehind.sink.bulk import MongoSink
from writebehind.worker.stream import PartitionStreams

POINTS = ("after_write", "before_dead_letter", "during_dead_letter", "after_dead_letter")


def _die(point: str, count: int) -> None:
    sys.stdout.write(json.dumps({"event": "crashpoint", "point": point, "count": count}) + "\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: str, nth: int) -> None:
    """Patch the worker's classes so that the ``nth`` arrival at ``point`` kills the process."""
    if point not in POINTS:
        raise SystemExit(f"unknown crash point {point!r}; one of {', '.join(POINTS)}")
    seen = 0

    def arrived() -> bool:
        nonlocal seen
        seen += 1
        return seen == nth

    if point == "after_write":
        original_write = MongoSink.write

        async def write(
            self: MongoSink, name: str, pendings: Sequence[Any], fence: Any = None
        ) -> Any:
            result = await original_write(self, name, pendings, fence)
            if pendings and arrived():
                _die(point, seen)
            return result

        MongoSink.write = write  # type: ignore[method-assign]
        return

    original_finish = PartitionStreams.finish
    original_send = AbstractConnection.send_packed_command
    armed: ContextVar[bool] = ContextVar("armed", default=False)
    # The move as it goes on the wire (SCRIPT EXISTS, sent first, names the sha too).
    move = b"EVALSHA\r\n$40\r\n" + hashlib.sha1(DEAD_LETTER.encode()).hexdigest().encode()

    async def send_packed_command(
        self: AbstractConnection, command: Any, *args: Any, **kwargs: Any
    ) -> None:
        await original_send(self, command, *args, **kwargs)
        payload = command if isinstance(command, bytes | str) else b"".join(command)
        if armed.get() and move in (payload.encode() if isinstance(payload, str) else payload):
            _die(point, seen)  # the move is on the wire; its reply never read

    AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]

    async def finish(
        self: PartitionStreams, partition: int, persisted: Sequence[Any], dead: Sequence[Any]
    ) -> None:
        if not dead or not arrived():
            await original_finish(self, partition, persisted, dead)
            return
        if point == "before_dead_letter":
            _die(point, seen)
        armed.set(point == "during_dead_letter")
        await original_finish(self, partition, persisted, dead)
        _die(point, seen)

    PartitionStreams.finish = finish  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    point, nth, *worker_args = argv
    install(point, int(nth))
    cli_main(["worker", *worker_args])


if __name__ == "__main__":
    main(sys.argv[1:])
