"""``ReadPolicy``: how a collection reads, fills and protects its cache entries (no IO)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from writebehind.core.errors import ConfigurationError
from writebehind.sdk.near.policy import NearCache

DEFAULT_TTL = 3600.0
"""Seconds a filled entry lives: the worker's default ``--clean-ttl``."""

MAX_NEGATIVE_TTL = 30.0
"""The default cap on ``negative_ttl``, in seconds."""


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """How ``get``/``get_many``/``warm`` use the cache. Frozen; checked when made: raises
    ``ConfigurationError`` naming the first field out of range.

    Attributes:
        fill: on a miss, store what MongoDB holds as a clean cache entry
            (cache-aside), fenced by version so it never replaces a newer write.
            Off: a miss reads MongoDB and stores nothing.
        ttl: seconds a filled entry lives (the worker's ``--clean-ttl`` default).
        ttl_jitter: fraction (0 to 1) of ``ttl`` taken off at random, so that
            entries filled together do not all expire together.
        negative_ttl: seconds a document MongoDB does not have is remembered as
            absent (negative caching); 0 turns negative caching off. Capped by
            ``max_negative_ttl`` whatever is asked: a negative entry hides
            documents written to MongoDB by anything but writebehind.
        max_negative_ttl: the cap on ``negative_ttl``, in seconds (default 30).
        lock_timeout: seconds one process may hold a cache entry's fill lease
            (the lease's TTL), and how long others wait for its fill before
            loading from MongoDB themselves. A fill whose load began longer
            ago than this is refused (see docs/architecture.md, "The fence");
            keep it well under the worker's ``--clean-ttl``.
        redis_timeout: seconds a read waits for Redis before reading MongoDB
            instead, and a write before raising ``CacheUnavailable``.
        mongo_timeout: seconds a read waits for MongoDB (a miss, a fill, a read
            while Redis is down, the read of ``modify``) before raising
            ``DatabaseUnavailable``.
        early_refresh: XFetch's beta (Vattani et al., VLDB 2015): a read of a
            clean entry near its expiry refreshes it in the background with
            probability rising as expiry nears. 0 (default) is off; 1 is the
            paper's choice; larger refreshes earlier.
        breaker_failures: consecutive Redis failures (timeouts, refused or lost
            connections) that open the circuit breaker: reads then go straight
            to MongoDB and writes fail at once with ``CacheUnavailable``.
        breaker_cooldown: seconds the breaker stays open before one call
            tries Redis again; its success closes the breaker.
        near: a ``NearCache`` keeps documents in the process too, kept
            coherent by the partition streams (README, "The near cache");
            ``None`` (default): every read asks Redis.

    The breaker and the write timeout belong to the client (one Redis): they
    follow the policy given to ``WriteBehind(reads=...)``.
    """

    fill: bool = True
    ttl: float = DEFAULT_TTL
    ttl_jitter: float = 0.1
    negative_ttl: float = 30.0
    max_negative_ttl: float = MAX_NEGATIVE_TTL
    lock_timeout: float = 2.0
    redis_timeout: float = 0.5
    mongo_timeout: float = 10.0
    early_refresh: float = 0.0
    breaker_failures: int = 5
    breaker_cooldown: float = 5.0
    near: NearCache | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fill, bool):
            raise ConfigurationError(f"fill must be a bool: {self.fill!r}")
        _positive("ttl", self.ttl)
        _positive("lock_timeout", self.lock_timeout)
        _positive("redis_timeout", self.redis_timeout)
        _positive("mongo_timeout", self.mongo_timeout)
        _positive("breaker_cooldown", self.breaker_cooldown)
        _at_least_zero("negative_ttl", self.negative_ttl)
        _at_least_zero("max_negative_ttl", self.max_negative_ttl)
        _at_least_zero("early_refresh", self.early_refresh)
        if not _number(self.ttl_jitter) or not 0 <= self.ttl_jitter < 1:
            raise ConfigurationError(
                f"ttl_jitter must be a fraction in [0, 1): {self.ttl_jitter!r}"
            )
        if type(self.breaker_failures) is not int or self.breaker_failures < 1:
            raise ConfigurationError(
                f"breaker_failures must be an int >= 1: {self.breaker_failures!r}"
            )
        if self.near is not None and not isinstance(self.near, NearCache):
            raise ConfigurationError(f"near must be a NearCache or None: {self.near!r}")
        if self.lock_timeout >= self.ttl:
            raise ConfigurationError(
                f"lock_timeout ({self.lock_timeout:g} s) must be under ttl ({self.ttl:g} s)"
            )

    @property
    def effective_negative_ttl(self) -> float:
        """Seconds a negative entry lives: ``negative_ttl``, never over ``max_negative_ttl``."""
        return min(self.negative_ttl, self.max_negative_ttl)


# Redis takes milliseconds (PX); the policy's public fields are seconds, so these
# conversions are functions of the read path, not members of ReadPolicy.


def entry_ttl_ms(policy: ReadPolicy, rand: float | None = None) -> int:
    """A filled entry's TTL in ms: ``ttl`` less up to ``ttl_jitter`` of it, at random."""
    r = random.random() if rand is None else rand
    return max(1, int(policy.ttl * (1.0 - policy.ttl_jitter * r) * 1000))


def negative_ttl_ms(policy: ReadPolicy) -> int:
    """A negative entry's TTL in ms (0: negative caching is off)."""
    return int(policy.effective_negative_ttl * 1000)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(name: str, value: object) -> None:
    if not _number(value) or not value > 0:  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be a number of seconds > 0: {value!r}")


def _at_least_zero(name: str, value: object) -> None:
    if not _number(value) or not value >= 0:  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be a number >= 0: {value!r}")
