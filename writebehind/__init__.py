"""writebehind: write to Redis in one round trip, persist to MongoDB behind it.

The SDK (``WriteBehind``) is what applications import; importing this package
imports nothing of the worker, the tools or the CLI. ``Worker`` (embeddable
in a process of your own) is importable from here too, loaded on first use;
it is not in ``__all__``, so ``from writebehind import *`` stays the SDK alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from writebehind import errors
from writebehind.core.keys import DocId, KeySpace
from writebehind.core.version import Version
from writebehind.sdk.client import WriteBehind
from writebehind.sdk.collection import Collection
from writebehind.sdk.computing import CachedFunction, Computed
from writebehind.sdk.near.policy import NearCache
from writebehind.sdk.reading.entry import Versioned
from writebehind.sdk.reading.policy import ReadPolicy

if TYPE_CHECKING:
    # For type checkers only (the redundant alias re-exports it): at run time
    # ``__getattr__`` loads the worker on first use.
    from writebehind.worker.runner import Worker as Worker

__all__ = [
    "CachedFunction",
    "Collection",
    "Computed",
    "DocId",
    "KeySpace",
    "NearCache",
    "ReadPolicy",
    "Version",
    "Versioned",
    "WriteBehind",
    "errors",
]
__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    if name == "Worker":
        from writebehind.worker.runner import Worker

        return Worker
    raise AttributeError(f"module 'writebehind' has no attribute {name!r}")
