"""``writebehind replay`` for hosts without the CLI on PATH: the same arguments.

    python scripts/replay.py --since 2024-06-10T12:00:00Z --dry-run \
        --redis-url redis://... --mongo-url mongodb://... --database app

Runs from a checkout (the repository root goes on ``sys.path`` when the
package is not installed); the dependencies must be installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import writebehind  # noqa: F401
except ModuleNotFoundError as exc:
    if exc.name != "writebehind":
        raise
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from writebehind.cli.replay import replay

if __name__ == "__main__":
    replay(prog_name="replay.py")
