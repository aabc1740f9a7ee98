"""The folders are layers: no module imports a folder above its own.

Read from the source (every ``import`` statement, type-only ones included),
not from ``sys.modules``: importing any ``writebehind.*`` module runs the
package's ``__init__``, which loads the SDK, so a run-time check could not
tell ``core/`` importing ``sdk/`` apart from the package doing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "writebehind"

MUST_NOT_IMPORT = {
    "core": ("sdk", "worker", "sink", "tools", "cli"),
    "sdk": ("worker", "sink", "tools", "cli"),
    "sink": ("worker", "tools", "cli"),
}
"""For each folder, the folders none of its modules may import."""


def imported_folders(path: Path) -> dict[str, int]:
    """The ``writebehind`` folders (or top-level modules) ``path`` imports, each with a line."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "writebehind":
                names = [f"writebehind.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "writebehind" and len(parts) > 1:
                found.setdefault(parts[1], node.lineno)
    return found


def violations(folder: str) -> list[str]:
    out = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for target, line in imported_folders(path).items():
            if target in MUST_NOT_IMPORT[folder]:
                out.append(f"{path.relative_to(PACKAGE)}:{line} imports writebehind.{target}")
    return out


def test_the_scan_sees_imports_across_folders() -> None:
    # Without this, a scan that found nothing would pass every rule below.
    assert "sink" in imported_folders(PACKAGE / "worker" / "processor.py")
    assert "core" in imported_folders(PACKAGE / "sink" / "reapply.py")


def test_core_imports_no_sdk_worker_sink_tools_or_cli() -> None:
    assert violations("core") == []


def test_sdk_imports_no_worker_sink_tools_or_cli() -> None:
    assert violations("sdk") == []


def test_sink_imports_no_worker_tools_or_cli() -> None:
    assert violations("sink") == []


def test_every_folder_is_a_regular_package() -> None:
    # writebehind/worker/ once had no __init__.py: it imported only as an implicit
    # namespace package, which tools that walk packages (and mypy) treat differently.
    folders = [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"]
    assert [str(p.relative_to(PACKAGE)) for p in folders if not (p / "__init__.py").exists()] == []
