"""Start-up checks of the Redis a worker is pointed at.

On a Redis Cluster every master is asked (a cluster client sends ``CONFIG GET``
to one node only), and the least safe answer is the one reported: one master
that evicts or does not persist is enough to lose writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from writebehind.core.errors import UnsafeEvictionPolicy
from writebehind.core.redis_client import is_cluster
from writebehind.core.replies import as_text

__all__ = ["RedisReport", "UnsafeEvictionPolicy", "inspect_redis"]


@dataclass(slots=True)
class RedisReport:
    eviction_policy: str | None = None
    persistence: str = "unknown"
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _config_get(redis: Redis, name: str) -> str | None:
    """One setting; on a cluster, the least safe value over the masters (``_least_safe``)."""
    try:
        if not is_cluster(redis):
            return _value(await redis.config_get(name), name)
        await redis.initialize()  # the masters known, once
        values = [
            _value(await redis.config_get(name, target_nodes=node), name)
            for node in redis.get_primaries()  # type: ignore[attr-defined]
        ]
    except ResponseError:
        return None  # CONFIG disabled or renamed (managed Redis)
    return _least_safe(name, values)


def _value(reply: Any, name: str) -> str | None:
    value = reply.get(name) if reply else None
    return None if value is None else as_text(value)


def _least_safe(name: str, values: list[str | None]) -> str | None:
    """An evicting policy, no AOF, no snapshots, unknown: whichever loses writes wins."""
    if None in values or not values:
        return None
    if name == "maxmemory-policy":
        return next((v for v in values if v and v.startswith("allkeys-")), values[0])
    if name == "appendonly":
        return "no" if "no" in values else values[0]
    return min(
        (v or "" for v in values), key=len
    )  # save: an empty schedule (no snapshots) is the least safe


async def inspect_redis(redis: Redis, *, strict: bool = True) -> RedisReport:
    """Eviction policy and persistence, with warnings.

    An unsafe eviction policy raises ``UnsafeEvictionPolicy``, or with
    ``strict=False`` (``writebehind check``) is listed in ``errors``.
    """
    report = RedisReport()
    policy = await _config_get(redis, "maxmemory-policy")
    report.eviction_policy = policy
    if policy is None:
        report.warnings.append("could not read maxmemory-policy (CONFIG unavailable); verify it")
    elif policy.startswith("allkeys-"):
        problem = (
            f"Redis maxmemory-policy is {policy!r}: it may evict dirty cache entries and "
            "change-record streams, losing writes. Use noeviction or a volatile-* policy."
        )
        if strict:
            raise UnsafeEvictionPolicy(problem)
        report.errors.append(problem)
    appendonly = await _config_get(redis, "appendonly")
    save = await _config_get(redis, "save")
    if appendonly == "yes":
        report.persistence = "aof"
    elif save:
        report.persistence = "rdb"
        report.warnings.append(
            "Redis persists only RDB snapshots: writes since the last one are lost if Redis "
            "crashes. Enable AOF (appendonly yes, appendfsync everysec or always)."
        )
    elif appendonly == "no":
        report.persistence = "none"
        report.warnings.append(
            "Redis has no persistence: a Redis restart loses every write not yet in MongoDB. "
            "Enable AOF (appendonly yes, appendfsync everysec or always)."
        )
    return report
