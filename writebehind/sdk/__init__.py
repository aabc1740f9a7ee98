"""The SDK: what application code imports; nothing of the worker, the tools or the CLI."""

from __future__ import annotations

from writebehind.sdk.client import WriteBehind
from writebehind.sdk.collection import Collection
from writebehind.sdk.reading.policy import ReadPolicy

__all__ = ["Collection", "ReadPolicy", "WriteBehind"]
