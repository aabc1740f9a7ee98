"""Where the repository's files are, for tests that run scripts or read deploy files."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root: the folder with pyproject.toml."""
