"""Cached computations: ``WriteBehind.cached`` (README, "Caching computations").

``keys`` names the Redis keys and renders key and tag templates, ``entry``
encodes values and parses the scripts' replies, ``journal`` holds
invalidations made while Redis was away (all without IO); ``store`` makes the
Redis calls, ``dependencies`` handles ``depends_on`` documents, and ``cached``
is the decorated function.
"""

from writebehind.sdk.computing.cached import CachedFunction
from writebehind.sdk.computing.options import Computed

__all__ = ["CachedFunction", "Computed"]
