"""The MongoDB side: version-guarded write models and the bulk writer that applies them."""

from writebehind.sink.bulk import MongoSink
from writebehind.sink.guards import Pending, guarded_write

__all__ = ["MongoSink", "Pending", "guarded_write"]
