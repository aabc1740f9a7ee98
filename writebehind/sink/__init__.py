"""The MongoDB side: version-guarded write models and the bulk writer that applies them."""

from .bulk import MongoSink
from .guards import Pending, guarded_write

__all__ = ["MongoSink", "Pending", "guarded_write"]
