"""writebehind: write to Redis in one round trip, persist to MongoDB behind it."""

from __future__ import annotations

from . import errors
from .client import WriteBehind
from .collection import Collection
from .keys import DocId, KeySpace
from .version import Version

__all__ = ["Collection", "DocId", "KeySpace", "Version", "WriteBehind", "errors"]
__version__ = "0.1.0"
