"""The SDK stands alone: importing ``writebehind`` loads nothing of the worker, tools or CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "writebehind"

FORBIDDEN = (
    "writebehind.worker",
    "writebehind.tools",
    "writebehind.cli",
    "writebehind.sink",
    "writebehind.observability",
    "writebehind.embedded",
    "writebehind.settings",
    "click",
    "pydantic_settings",
)


def _modules_after(statement: str) -> list[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return list(json.loads(out.stdout))


def _forbidden(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_importing_the_sdk_imports_no_worker_tool_or_cli() -> None:
    modules = _modules_after("import writebehind; from writebehind import WriteBehind, errors")
    assert "writebehind.sdk.client" in modules
    assert _forbidden(modules) == []


def _modules_under(folder: str) -> list[str]:
    """Every module of ``writebehind/<folder>``, packages included, by dotted name."""
    names = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_sdk_and_http_module_imports_no_worker_tool_or_cli() -> None:
    # Each module on its own, in a fresh interpreter: a module no other SDK module
    # imports (a new reader, the Starlette glue) would escape a test of the package.
    modules = _modules_under("sdk") + _modules_under("http")
    assert "writebehind.sdk.near.cluster_feed" in modules
    assert "writebehind.http.starlette" in modules
    for module in modules:
        loaded = _modules_after(f"import {module}")
        assert _forbidden(loaded) == [], module


def test_importing_the_http_package_imports_no_web_framework() -> None:
    loaded = _modules_after("import writebehind.http")
    assert [m for m in loaded if m.split(".")[0] in ("starlette", "fastapi")] == []


def test_worker_is_importable_from_the_package_on_first_use() -> None:
    modules = _modules_after("from writebehind import Worker")
    assert "writebehind.worker.runner" in modules


def test_a_star_import_is_the_sdk_alone() -> None:
    # Worker is importable but not exported: __all__ would load it for ``import *``.
    modules = _modules_after("from writebehind import *")
    assert _forbidden(modules) == []
