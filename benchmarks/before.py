"""An older revision of the package, importable beside this one: ``writebehind_before``.

For before/after figures measured in one run (interleaved, as every comparison
here): ``git archive REV writebehind`` into a temporary folder, renamed, with
its imports and its Prometheus metric names rewritten so that both versions
load into one process without colliding.
"""

from __future__ import annotations

import importlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

NAME = "writebehind_before"


def load(rev: str) -> ModuleType:
    """The package at git revision ``rev`` (of the repository we run in): ``writebehind_before``."""
    archive = subprocess.run(
        ["git", "archive", rev, "writebehind"], capture_output=True, check=True
    ).stdout
    root = Path(tempfile.mkdtemp(prefix="wb-before-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    package = root / NAME
    (root / "writebehind").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\bwritebehind\.(?=[a-z_])", f"{NAME}.", text)
        text = text.replace("from writebehind import", f"from {NAME} import")
        text = re.sub(r"([\"'])writebehind_", r"\1before_writebehind_", text)  # metric names
        path.write_text(text)
    sys.path.insert(0, str(root))
    return importlib.import_module(NAME)
