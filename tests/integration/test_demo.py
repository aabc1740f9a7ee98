"""`writebehind demo` (the README's first command) runs end to end and cleans up after itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pymongo
import redis as redis_sync

ROOT = Path(__file__).resolve().parents[2]


def demo_processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "demo-worker-" in cmdline or "writebehind-demo-" in cmdline:
            found.append(cmdline)
    return found


def test_demo_verifies_and_leaves_no_process_behind() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRITEBEHIND_")}
    result = subprocess.run(
        [sys.executable, "-m", "writebehind.cli", "demo", "--duration", "4",
         "--documents", "60", "--producers", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verified: MongoDB holds exactly the newest acknowledged version" in result.stdout
    assert "killed worker-0 with SIGKILL" in result.stdout
    assert "restarted MongoDB" in result.stdout
    assert demo_processes() == []


def test_demo_on_servers_of_your_own_cleans_up_and_says_what_it_skips(
    redis_factory: Any, mongo_url: str
) -> None:
    server = redis_factory()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRITEBEHIND_")}
    env.update(WRITEBEHIND_REDIS_URL=server.url, WRITEBEHIND_MONGO_URL=mongo_url)
    client = pymongo.MongoClient(mongo_url)
    before = set(client.list_database_names())
    result = subprocess.run(
        [sys.executable, "-m", "writebehind.cli", "demo", "--duration", "4",
         "--documents", "60", "--producers", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "verified: MongoDB holds exactly the newest acknowledged version" in out
    assert "skipped: stopping MongoDB part-way (WRITEBEHIND_MONGO_URL is set" in out
    assert "stopped MongoDB" not in out
    # Each event on one progress line only, then once in the summary.
    progress = [line for line in out.splitlines() if line.startswith("t=")]
    for event in ("killed worker-0 with SIGKILL", "producers done; draining"):
        assert sum(event in line for line in progress) == 1, out
    # Nothing left behind: no keys, no database, no log folder.
    assert "removed MongoDB database demo_" in out
    assert redis_sync.Redis.from_url(server.url).dbsize() == 0
    assert set(client.list_database_names()) == before
    client.close()
    [logs] = [line.split()[1] for line in out.splitlines() if line.startswith("logs ")]
    assert not Path(logs).exists()
    assert demo_processes() == []


def test_a_sigtermed_demo_stops_its_workers_and_servers() -> None:
    """A SIGTERM (``kill``, a CI timeout) once left both workers, redis-server and
    SecantusDB running: only Ctrl-C ran the demo's clean-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRITEBEHIND_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "writebehind.cli", "demo", "--duration", "60",
         "--documents", "60", "--producers", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the first progress line: workers and servers are running
        seen.append(line)
        if line.startswith("t="):
            break
    assert demo_processes(), "".join(seen)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "interrupted" in err
    assert demo_processes() == []
