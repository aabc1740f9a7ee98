"""The near cache (L1): documents kept in the process, kept coherent by the partition streams.

Pure parts (``policy``, ``store``, ``staleness``, ``records``) have no IO;
``follower`` is the thin IO adapter that reads the streams, and ``reader``
puts the near cache in front of the read path. See README, "The near cache".
"""

from __future__ import annotations

from writebehind.sdk.near.policy import NearCache

__all__ = ["NearCache"]
