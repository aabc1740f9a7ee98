"""The decorator's options and a call's answer (no IO)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from writebehind.core.errors import ConfigurationError

R = TypeVar("R")

KeySpec = str | Callable[..., str] | None
DependsOn = Callable[..., Iterable[tuple[str, Any]]]


@dataclass(frozen=True, slots=True)
class Computed(Generic[R]):
    """A value and what it was computed under (``CachedFunction.validated``).

    ``source``: ``redis`` (a current entry), ``computed`` (computed now and
    stored, or storable), ``fresh`` (computed without stamps: Redis unavailable,
    or the journal covers it). ``validator``: a stable hex name of the entry key,
    the stamps (generations, dependency versions) the value was computed under
    and the value's BSON, the same in every process and different whenever the
    value is (an HTTP ``ETag``'s basis); ``None`` for ``fresh`` values, which
    have none.
    """

    value: R
    source: str
    validator: str | None


@dataclass(frozen=True, slots=True)
class Options:
    """The decorator's arguments, checked (``WriteBehind.cached`` documents them)."""

    ttl: float
    key: KeySpec
    tags: tuple[str, ...]
    namespace: str | None
    depends_on: DependsOn | None
    cache_if: Callable[[Any], bool] | None
    early_refresh: float | None
    lock_timeout: float | None = None

    def __post_init__(self) -> None:
        ttl = self.ttl
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < 2**40:
            raise ConfigurationError(f"ttl must be a number of seconds > 0: {ttl!r}")
        if self.key is not None and not isinstance(self.key, str) and not callable(self.key):
            raise ConfigurationError(f"key must be a str template or a callable: {self.key!r}")
        ns = self.namespace
        if ns is not None and (not isinstance(ns, str) or not ns):
            raise ConfigurationError(f"namespace must be a non-empty str: {self.namespace!r}")
        for what, fn in (("depends_on", self.depends_on), ("cache_if", self.cache_if)):
            if fn is not None and not callable(fn):
                raise ConfigurationError(f"{what} must be callable: {fn!r}")
        lock = self.lock_timeout
        if lock is not None and (
            isinstance(lock, bool) or not isinstance(lock, int | float) or not 0 < lock < 2**31
        ):
            raise ConfigurationError(f"lock_timeout must be a number of seconds > 0: {lock!r}")
        beta = self.early_refresh
        if beta is not None and (
            isinstance(beta, bool) or not isinstance(beta, int | float) or not beta >= 0
        ):
            raise ConfigurationError(f"early_refresh must be a number >= 0: {beta!r}")
