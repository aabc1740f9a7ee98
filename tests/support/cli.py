"""Running the ``writebehind`` command as a subprocess from async tests.

The commands call ``anyio.run`` themselves, so they cannot run inside a test's
event loop; a subprocess also exercises the real entry point and exit codes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
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
    cluster: bool = False
    """Add ``--redis-cluster``: ``redis_url`` names a node of a Redis Cluster."""

    async def __call__(self, *args: str) -> CliResult:
        command = [
            *self.program, *args,
            "--redis-url", self.redis_url,
            "--mongo-url", self.mongo_url,
            "--database", self.database,
            "--prefix", TEST_PREFIX,
            "--partitions", str(self.partitions),
            "--log-format", "json",
            *(("--redis-cluster",) if self.cluster else ()),
        ]  # fmt: skip
        with anyio.fail_after(60):
            done = await anyio.run_process(command, check=False)
        return CliResult(done.returncode, done.stdout.decode(), done.stderr.decode())


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``writebehind <args>`` as a subprocess, synchronously; no ``WRITEBEHIND_*`` leaks in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WRITEBEHIND_")}
    return subprocess.run(
        [sys.executable, "-m", "writebehind.cli", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tempfile.gettempdir(),  # no stray .env
    )


def spawn_cli(*args: str, output: Path) -> subprocess.Popen[bytes]:
    """``writebehind <args>`` running in the background, stdout and stderr into ``output``;
    no ``WRITEBEHIND_*`` leaks in. The caller stops it (``kill()`` in a ``finally``)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WRITEBEHIND_")}
    with output.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "writebehind.cli", *args],
            env=clean,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),
        )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error: ...`` line a failed command printed; fails on a traceback."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    return errors[0]
