"""Worker daemons as real subprocesses (``python -m writebehind.cli worker``).

Tests use them where only a process boundary will do: ``kill -9``, SIGTERM and
SIGINT delivered by the OS, and the exit code the CLI gives back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from writebehind.settings import LEGACY_MS_ALIASES

REPO_ROOT = Path(__file__).resolve().parents[2]


def _python_path() -> str:
    # The crash-point launcher lives in tests/, which is not installed.
    return os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)


def spawn_logged(args: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``args`` in its own session (a test can signal its whole group), output appended to
    ``log_path``, no stdin."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )


def refuse_legacy_names(settings: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` when ``settings`` uses an old millisecond name (``linger_ms``).

    Test helpers set the seconds names (``linger``); the new name beats the old
    one, so an old name given on top would be ignored without a word. The
    deprecated aliases have their own tests, which build settings directly.
    """
    legacy = sorted(set(settings) & set(LEGACY_MS_ALIASES))
    if legacy:
        use = ", ".join(f"{old} -> {LEGACY_MS_ALIASES[old]}" for old in legacy)
        raise TypeError(f"old millisecond setting names in a test helper; use seconds: {use}")


class WorkerProcess:
    """One ``writebehind worker`` subprocess, its log in a file; ``close()`` always kills it.

    ``flags`` become CLI options: ``claim_idle="1s"`` is ``--claim-idle 1s``,
    ``redis_cluster=True`` is ``--redis-cluster``; an old millisecond name raises
    ``TypeError`` (see ``refuse_legacy_names``).
    Logs are JSON lines, so tests can look for events.
    """

    def __init__(
        self,
        *,
        redis_url: str,
        mongo_url: str,
        database: str,
        log_path: Path,
        prefix: str = "t",
        partitions: int = 4,
        consumer: str = "subprocess-worker",
        crash_at: tuple[str, int] | None = None,
        **flags: Any,
    ) -> None:
        refuse_legacy_names(flags)
        self.consumer = consumer
        self.log_path = log_path
        # ``crash_at=(point, n)``: the worker kills itself the nth time it reaches
        # ``point`` (see tests/support/crashpoints.py).
        launcher = (
            ["writebehind.cli", "worker"]
            if crash_at is None
            else ["tests.support.crashpoints", crash_at[0], str(crash_at[1])]
        )
        self.args = [
            sys.executable, "-m", *launcher,
            "--redis-url", redis_url,
            "--mongo-url", mongo_url,
            "--database", database,
            "--prefix", prefix,
            "--partitions", str(partitions),
            "--consumer", consumer,
            "--log-format", "json",
        ]  # fmt: skip
        # Several workers share this host: each gets an ephemeral metrics port.
        flags.setdefault("metrics_address", "127.0.0.1:0")
        for name, value in flags.items():
            flag = f"--{name.replace('_', '-')}"
            self.args += [flag] if value is True else [flag, str(value)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.exited_at: float | None = None

    def start(self) -> WorkerProcess:
        assert self.proc is None, "a WorkerProcess runs once"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _python_path()}
        self.proc = spawn_logged(self.args, self.log_path, env)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def poll(self) -> int | None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None and self.exited_at is None:
            self.exited_at = time.monotonic()
        return code

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> int:
        """``kill -9``, and reap it."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        self.poll()
        return code

    async def wait_exit(self, within: float) -> int:
        """The exit code; fails the test if the process is still running after ``within`` s."""
        deadline = anyio.current_time() + within
        while (code := self.poll()) is None:
            if anyio.current_time() > deadline:
                raise AssertionError(
                    f"worker {self.consumer} still running after {within}s; log tail:\n"
                    + self.output()[-3000:]
                )
            await anyio.sleep(0.01)
        return code

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (anything else, e.g. a traceback, is skipped)."""
        found = []
        for line in self.output().splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                found.append(item)
        return found

    def crash_point(self) -> dict[str, Any] | None:
        """The crash point it died at, if it died at one."""
        return next((e for e in self.events() if e.get("event") == "crashpoint"), None)

    def event_names(self) -> list[str]:
        return [str(e.get("event")) for e in self.events()]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()


def _state(pid: int) -> str:
    """The process state letter of ``/proc/<pid>/stat`` (``T``: stopped by a signal)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


async def wait_stopped(pid: int, within: float = 10.0) -> None:
    """Return once ``pid`` is stopped: ``SIGSTOP`` is delivered asynchronously."""
    with anyio.fail_after(within):
        while _state(pid) != "T":  # noqa: ASYNC110 (the kernel sets no event)
            await anyio.sleep(0.001)
