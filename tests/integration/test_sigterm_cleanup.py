"""A test run stopped with SIGTERM still stops the servers its fixtures started."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

from tests.support.paths import REPO_ROOT
from tests.support.processes import spawn_logged

INNER = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    def test_holds_a_server(redis_server):
        Path(os.environ["WB_PID_FILE"]).write_text(str(redis_server.proc.pid))
        time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] != "Z"


def test_sigterm_stops_the_fixture_servers(tmp_path: Path) -> None:
    inner = REPO_ROOT / "tests" / f"test_inner_sigterm_{os.getpid()}.py"
    inner.write_text(INNER)
    pid_file = tmp_path / "pid"
    env = {**os.environ, "WB_PID_FILE": str(pid_file), "PYTHONPATH": str(REPO_ROOT)}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(inner)]
    run = spawn_logged(args, tmp_path / "inner.log", env)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert run.poll() is None, (tmp_path / "inner.log").read_text()
            assert time.monotonic() < deadline, "the inner run never started its server"
            time.sleep(0.05)
        server = int(pid_file.read_text())
        assert _alive(server)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _alive(server):
            assert time.monotonic() < deadline, "redis-server outlived the SIGTERMed run"
            time.sleep(0.05)
    finally:
        inner.unlink(missing_ok=True)
        if run.poll() is None:
            run.kill()
