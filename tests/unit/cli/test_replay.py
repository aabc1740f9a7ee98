"""``writebehind replay`` argument checking, before any server is contacted.

Bad arguments are refused with click's usage error (exit 2) before a
connection is opened or logging configured, so these need no servers: the
URLs point at a port nothing listens on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.paths import REPO_ROOT
from writebehind.cli import main

ROOT = REPO_ROOT
NOWHERE = ["--redis-url", "redis://127.0.0.1:9/0", "--mongo-url", "mongodb://127.0.0.1:9"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["replay", *NOWHERE, "--database", "d", "--partitions", "4", *args]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "Invalid value for '--since'"),
        (["--since", "0", "--until", "soon"], "Invalid value for '--until'"),
        (
            ["--since", "2024-06-10T12:00:00Z", "--until", "2024-06-10T11:00:00Z"],
            "is before SINCE",
        ),
        (["--since", "0", "--partition", "4"], "4 is out of range: there are 4 partitions"),
        (["--since", "0", "--partition", "-1"], "out of range"),
        (["--since", "0", "--collection", "a$b"], "Invalid value for '--collection'"),
        (["--since", "0", "--batch-size", "0"], "Invalid value for '--batch-size'"),
        ([], "Missing option '--since'"),
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    code, output = invoke(*args)
    assert code == 2, output
    assert message in output


def test_unreachable_redis_is_a_clear_error_not_a_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "writebehind.cli", "replay", *NOWHERE,
         "--database", "d", "--since", "0", "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "Error: replay stopped: Redis (redis://127.0.0.1:9/0): ConnectionError: "
    )
    assert "running the same command again is safe" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_replay_is_a_registered_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "replay" in result.output


def test_script_runs_from_the_repository_root() -> None:
    # As on a host without the CLI on PATH: `python scripts/replay.py --help`.
    proc = subprocess.run(
        [sys.executable, "scripts/replay.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--since SINCE" in proc.stdout
    assert "--allow-gap" in proc.stdout


def test_script_finds_the_package_without_it_installed(tmp_path: Path) -> None:
    # Hide the installed package: only the checkout's copy, via the script's path
    # fix-up, can be found. Dependencies still come from this interpreter.
    proc = subprocess.run(
        [sys.executable, "-S", str(ROOT / "scripts" / "replay.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": _site_packages_without_writebehind(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "--since SINCE" in proc.stdout


def _site_packages_without_writebehind(tmp_path: Path) -> str:
    """A copy-free view of site-packages that leaves out writebehind's editable install."""
    import site

    view = tmp_path / "site"
    view.mkdir()
    for directory in site.getsitepackages():
        for entry in Path(directory).iterdir():
            name = entry.name.lower()
            if "writebehind" in name or name.endswith(".pth"):
                continue
            (view / entry.name).symlink_to(entry)
    return str(view)
