"""The SDK stands alone: importing ``writebehind`` loads nothing of the worker, tools or CLI."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_worker_is_importable_from_the_package_on_first_use() -> None:
    modules = _modules_after("from writebehind import Worker")
    assert "writebehind.worker.runner" in modules
