"""``Cache-Control`` and ``Vary`` response fields from a policy (no IO).

Directives: RFC 9111 section 5.2.2 (``public``, ``private``, ``max-age``,
``s-maxage``, ``no-cache``, ``no-store``) and RFC 5861 (``stale-while-revalidate``,
``stale-if-error``); ``Vary``: RFC 9110 section 12.5.5. Ages are
delta-seconds (RFC 9111 section 1.2.2): whole seconds, at most 2**31.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from writebehind.core.errors import InvalidCachePolicy
from writebehind.sdk.reading.policy import ReadPolicy

MAX_AGE_LIMIT = 2**31
"""RFC 9111 section 1.2.2: caches take any larger delta-seconds as 2**31."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2
_AGES = ("max_age", "s_maxage", "stale_while_revalidate", "stale_if_error")


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How caches may keep a response. Frozen; checked when made.

    Attributes:
        scope: ``"private"`` (only the user's own cache may store it: the
            default, right for per-user data), ``"public"`` (shared caches
            too, even for authenticated requests), or ``None`` (neither said).
        max_age: seconds the response stays fresh (``max-age``); ``None``
            leaves it out. 0: stale at once, so every reuse is revalidated
            (a 304 that needs only the document's version).
        s_maxage: ``max-age`` for shared caches only; not with ``private``.
        stale_while_revalidate: seconds a stale response may still be served
            while the cache revalidates it in the background (RFC 5861 section 3).
        stale_if_error: seconds a stale response may be served when
            revalidating fails with an error (RFC 5861 section 4).
        no_cache: a stored response must be revalidated before every reuse.
        no_store: nothing may be stored; no ages may be given with it.
        vary: request field names the response depends on (``Vary``), or ``("*",)``.

    Raises ``InvalidCachePolicy`` (an ``InvalidInput``): an age that is not a
    whole number of seconds in [0, 2**31], ``no_store`` with an age,
    ``s_maxage`` with ``scope="private"``, an unknown scope, a ``vary`` entry
    that is not a field name, or ``*`` with other names.
    """

    scope: Literal["public", "private"] | None = "private"
    max_age: int | None = None
    s_maxage: int | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    no_cache: bool = False
    no_store: bool = False
    vary: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.scope not in (None, "public", "private"):
            raise InvalidCachePolicy(f"scope must be 'public', 'private' or None: {self.scope!r}")
        for name in _AGES:
            _check_age(name, getattr(self, name))
        for name in ("no_cache", "no_store"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidCachePolicy(f"{name} must be a bool: {getattr(self, name)!r}")
        if self.no_store:
            given = [name for name in _AGES if getattr(self, name) is not None]
            if given:
                raise InvalidCachePolicy(
                    f"no_store forbids storing the response: {', '.join(given)} cannot go with it"
                )
        if self.s_maxage is not None and self.scope == "private":
            raise InvalidCachePolicy("s_maxage is for shared caches, which private excludes")
        object.__setattr__(self, "vary", _vary(self.vary))

    @classmethod
    def from_reads(cls, reads: ReadPolicy, **overrides: Any) -> CachePolicy:
        """The policy matching a collection's ``ReadPolicy``, with ``overrides`` applied.

        ``private, max-age=0, stale-if-error=<reads.ttl>``: every reuse is
        revalidated (cheap: a 304 needs only the version), and a cache may
        fall back on its copy while the application fails, for as long as
        writebehind keeps a cache entry (``ttl``, seconds). The cache entry's
        TTL is not used as ``max-age``: writebehind keeps its entries current
        on every write, an HTTP cache would serve its copy, unchanged, that long.
        Raises ``InvalidCachePolicy`` as the constructor does, and for a ``reads``
        that is not a ``ReadPolicy``.
        """
        if not isinstance(reads, ReadPolicy):
            raise InvalidCachePolicy(f"reads must be a ReadPolicy, not {type(reads).__name__}")
        base = cls(scope="private", max_age=0, stale_if_error=int(reads.ttl))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidCachePolicy(f"not CachePolicy fields: {', '.join(unknown)}")
        return replace(base, **overrides)

    def cache_control(self) -> str:
        """The ``Cache-Control`` field value (``""``: nothing to say)."""
        directives: list[str] = [self.scope] if self.scope else []
        if self.no_store:
            directives.append("no-store")
        if self.no_cache:
            directives.append("no-cache")
        for name, directive in (
            ("max_age", "max-age"),
            ("s_maxage", "s-maxage"),
            ("stale_while_revalidate", "stale-while-revalidate"),
            ("stale_if_error", "stale-if-error"),
        ):
            value = getattr(self, name)
            if value is not None:
                directives.append(f"{directive}={value}")
        return ", ".join(directives)

    def headers(self) -> dict[str, str]:
        """``Cache-Control`` and ``Vary``, each only when it has something to say."""
        found: dict[str, str] = {}
        if value := self.cache_control():
            found["Cache-Control"] = value
        if self.vary:
            found["Vary"] = ", ".join(self.vary)
        return found


def _check_age(name: str, value: Any) -> None:
    if value is None:
        return
    if type(value) is not int or not 0 <= value <= MAX_AGE_LIMIT:
        raise InvalidCachePolicy(
            f"{name} must be a whole number of seconds in [0, 2**31] or None: {value!r}"
        )


def _vary(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidCachePolicy(f"vary must be a tuple of field names, not {value!r:.60}")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise InvalidCachePolicy(f"not a field name for Vary: {name!r:.60}")
    if "*" in names and len(names) > 1:
        raise InvalidCachePolicy("Vary: * stands alone (RFC 9110 section 12.5.5)")
    return names
