"""One convention for durations in public names: seconds, never a ``_ms`` name beside them.

Redis takes milliseconds (``PX``, ``BLOCK``, ``XAUTOCLAIM``), so conversions exist,
but as functions of the modules that talk to Redis, not as members of the classes
and parameters applications and operators use.
"""

from __future__ import annotations

import contextlib
import inspect

import writebehind
from writebehind import http
from writebehind.settings import LEGACY_MS_ALIASES, Settings

PUBLIC = [
    writebehind.WriteBehind,
    writebehind.Collection,
    writebehind.CachedFunction,
    writebehind.ReadPolicy,
    writebehind.NearCache,
    writebehind.Versioned,
    writebehind.Version,
    writebehind.Worker,
    http.CachePolicy,
    http.EntityTag,
    http.Decision,
    Settings,
]
NOT_DURATIONS = {("Version", "ms")}
"""``Version.ms``: the stream id's time part, a timestamp (the id is ``<ms>-<seq>``)."""


def _ms_names(cls: type) -> set[str]:
    names = {n for n in dir(cls) if not n.startswith("_") and (n.endswith("_ms") or n == "ms")}
    with contextlib.suppress(TypeError, ValueError):  # no signature to read
        names |= {p for p in inspect.signature(cls).parameters if p.endswith("_ms")}
    return {n for n in names if (cls.__name__, n) not in NOT_DURATIONS}


def test_no_public_class_or_parameter_has_a_millisecond_name() -> None:
    found = {cls.__name__: sorted(_ms_names(cls)) for cls in PUBLIC}
    # Settings keeps the old millisecond names readable, as the deprecated aliases
    # they are (``linger_ms=5`` is still accepted until 0.3).
    found["Settings"] = sorted(set(found["Settings"]) - set(LEGACY_MS_ALIASES))
    assert {name: ms for name, ms in found.items() if ms} == {}


def test_the_cached_decorator_takes_seconds() -> None:
    parameters = inspect.signature(writebehind.WriteBehind.cached).parameters
    assert not [p for p in parameters if p.endswith("_ms")]
    assert {"ttl", "lock_timeout"} <= set(parameters)
