"""The read side of the SDK: ``ReadPolicy``, the reader, stampede control, write-through.

Pure decisions (the policy, XFetch, the circuit breaker, entry parsing) live
in small modules without IO; ``reader``, ``lease``, ``guard`` and
``write_through`` are the thin IO around them.
"""

from __future__ import annotations

from writebehind.sdk.reading.policy import ReadPolicy

__all__ = ["ReadPolicy"]
