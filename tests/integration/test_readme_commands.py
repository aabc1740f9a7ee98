"""Every ```sh block of README.md names what exists, parses with the real CLI, and the
read-only commands among them run against real servers.

(The ```python blocks run as whole programs in test_readme_examples.py.) A shell
line is one of: ``make TARGET`` (a Makefile target), ``pip install`` (the
package and its extras), ``writebehind ...`` (every flag an option of that
command; a line written out in full, not a synopsis, parsed by the command
itself), ``python scripts/...`` (the script exists), and the HTTP example's
``uvicorn``/``curl`` lines (the app and its routes exist; tests/integration/http
runs the app over real HTTP). Synopses (``[--json]``, ``(--all | ID ...)``) of
``stats``, ``check``, ``dlq list`` and ``replay --dry-run`` are expanded into
each way of writing them and run.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
import tomllib

import click
import pytest

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.paths import REPO_ROOT
from tests.support.servers import RedisServer
from writebehind.cli import main as cli

README = REPO_ROOT / "README.md"
_SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
PLACEHOLDERS = {"NAME": "users", "ID": "0-1", "...": None}
RUNNABLE = {("stats",), ("check",), ("dlq", "list"), ("replay",)}
"""Commands that change nothing (``replay`` only with ``--dry-run``): run for real."""


def readme_lines() -> list[str]:
    """Each command line of the README's ```sh blocks, continuations joined, comments cut."""
    lines = []
    for block in _SH_BLOCK.findall(README.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].split(" # ", 1)[0].strip()
            if line:
                lines.append(line)
    return lines


def _words(line: str) -> list[str]:
    words = shlex.split(line)
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value before a command
        words.pop(0)
    return words


def _command(words: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The click command a ``writebehind`` line names, its path and the rest of the line."""
    command: click.Command = cli
    path: list[str] = []
    rest = list(words)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    return command, path, rest


def _is_synopsis(line: str) -> bool:
    return any(mark in line for mark in ("[", "(", "...")) or bool(
        re.search(r"\b[A-Z]{2,}\b", line)
    )


def _flags(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_the_readme_has_shell_lines() -> None:
    assert any(line.startswith("writebehind ") for line in readme_lines())


@pytest.mark.parametrize("line", readme_lines())
def test_each_shell_line_names_what_exists(line: str) -> None:
    words = _words(line)
    program = words[0]
    if program == "make":
        targets = set(re.findall(r"^([a-z][\w-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))
        assert set(words[1:]) <= targets, line
    elif program == "pip":
        pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
        for requirement in words[2:]:
            name, _, extras = requirement.partition("[")
            if name == pyproject["name"]:
                missing = set(extras.rstrip("]").split(",")) - {""}
                assert missing <= set(pyproject["optional-dependencies"]), line
    elif program == "python":
        assert (REPO_ROOT / words[1]).is_file(), line
    elif program == "uvicorn":
        app_dir = words[words.index("--app-dir") + 1]
        module, _, attribute = next(w for w in words if ":" in w).partition(":")
        source = (REPO_ROOT / app_dir / f"{module}.py").read_text()
        assert re.search(rf"^{attribute} = ", source, re.M), line
    elif program == "curl":
        route = re.sub(r"^localhost:\d+", "", next(w for w in words if w.startswith("localhost")))
        pattern = re.sub(r"/\d+", "/{user_id}", route)
        assert f'"{pattern}"' in (REPO_ROOT / "examples" / "http_app.py").read_text(), line
    elif program == "writebehind":
        command, path, rest = _command(words[1:])
        assert path, f"{line}: no such command"
        for word in rest:
            flag = word.strip("[]()|").split("=", 1)[0]
            if flag.startswith("--"):
                assert flag in _flags(command), f"{line}: {flag} is not an option of {path}"
        if not _is_synopsis(line):  # written out in full: the command itself parses it
            command.make_context(" ".join(path), rest)
    else:
        pytest.fail(f"README shows {program!r}, which this test does not know: {line}")


def _variants(line: str) -> list[list[str]]:
    """Each way a synopsis can be written: every optional group left out or put in,
    placeholders filled in; a line with alternatives ``(a | b)`` is not expanded."""
    groups = _OPTIONAL.findall(line)
    out = []
    for chosen in itertools.product((False, True), repeat=len(groups)):
        picks = iter(chosen)
        text = _OPTIONAL.sub(lambda m, picks=picks: m.group(1) if next(picks) else "", line)
        words = []
        for word in shlex.split(text):
            filled = PLACEHOLDERS.get(word, word)
            if filled is not None:
                words.append(filled)
        out.append(words)
    return out


def runnable_invocations() -> list[list[str]]:
    found = []
    for line in readme_lines():
        words = _words(line)
        if words[0] != "writebehind" or "(" in line:
            continue
        _, path, _ = _command(words[1:])
        if tuple(path) not in RUNNABLE or (path == ["replay"] and "--dry-run" not in words):
            continue
        found.extend(v[1:] for v in _variants(line))
    return found


def test_the_readme_shows_read_only_commands() -> None:
    assert {tuple(_command(v)[1]) for v in runnable_invocations()} == RUNNABLE


@pytest.mark.parametrize("args", runnable_invocations(), ids=" ".join)
def test_read_only_readme_commands_run(
    args: list[str], redis_server: RedisServer, mongo_url: str, database_name: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRITEBEHIND_")}
    env.update(
        WRITEBEHIND_REDIS_URL=redis_server.url,
        WRITEBEHIND_MONGO_URL=mongo_url,
        WRITEBEHIND_DATABASE=database_name,
        WRITEBEHIND_PREFIX=TEST_PREFIX,
        WRITEBEHIND_PARTITIONS=str(TEST_PARTITIONS),
    )
    done = subprocess.run(
        [sys.executable, "-m", "writebehind.cli", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    # 0 done; replay: 3 when SINCE is older than the retained history (README, exit statuses).
    allowed = {0, 3} if args[0] == "replay" else {0}
    assert done.returncode in allowed, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
