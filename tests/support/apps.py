"""The example HTTP app (examples/http_app.py) as real uvicorn subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT
from tests.support.processes import spawn_logged
from tests.support.waiting import wait_until

_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class AppProcess:
    """``uvicorn http_app:app`` on a free port (``--port 0``: the port is read from its log).

    ``hash_seed`` becomes the process's ``PYTHONHASHSEED``. ``close()`` always kills it.
    """

    def __init__(
        self,
        *,
        redis_url: str,
        mongo_url: str,
        database: str,
        log_path: Path,
        hash_seed: str = "0",
    ) -> None:
        self.log_path = log_path
        self.args = [
            sys.executable, "-m", "uvicorn",
            "--app-dir", str(REPO_ROOT / "examples"),
            "--host", "127.0.0.1", "--port", "0",
            "http_app:app",
        ]  # fmt: skip
        python_path = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p
        )
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": python_path,
            "PYTHONHASHSEED": hash_seed,
            "WRITEBEHIND_REDIS_URL": redis_url,
            "WRITEBEHIND_MONGO_URL": mongo_url,
            "WRITEBEHIND_DATABASE": database,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    async def start(self) -> AppProcess:
        assert self.proc is None, "an AppProcess runs once"
        self.proc = spawn_logged(self.args, self.log_path, self.env)

        async def listening() -> int:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited ({self.proc.returncode}):\n{self.output()}")
            found = _LISTENING.search(self.output())
            return int(found.group(1)) if found else 0

        self.port = await wait_until(listening, timeout=30, message="the app to listen")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
