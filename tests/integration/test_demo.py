"""`writebehind demo` (the README's first command) runs end to end and cleans up after itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
