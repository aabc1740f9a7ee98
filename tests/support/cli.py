"""Running the ``writebehind`` command as a subprocess from async tests.

The commands call ``anyio.run`` themselves, so they cannot run inside a test's
event loop; a subprocess also exercises the real entry point and exit codes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import anyio

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass(frozen=True)
class Cli:
    """``writebehind <args> --redis-url ... --mongo-url ... --database ...`` on the test servers."""

    redis_url: str
    mongo_url: str
    database: str
    partitions: int = TEST_PARTITIONS
    program: tuple[str, ...] = (sys.executable, "-m", "writebehind.cli")
    """What to run: the CLI, or e.g. ``(sys.executable, "scripts/replay.py")``."""

    async def __call__(self, *args: str) -> CliResult:
        command = [
            *self.program, *args,
            "--redis-url", self.redis_url,
            "--mongo-url", self.mongo_url,
            "--database", self.database,
            "--prefix", TEST_PREFIX,
            "--partitions", str(self.partitions),
            "--log-format", "json",
        ]  # fmt: skip
        with anyio.fail_after(60):
            done = await anyio.run_process(command, check=False)
        return CliResult(done.returncode, done.stdout.decode(), done.stderr.decode())
