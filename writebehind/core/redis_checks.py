"""Start-up checks of the Redis a worker is pointed at."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from writebehind.core.errors import UnsafeEvictionPolicy
from writebehind.core.replies import as_text

__all__ = ["RedisReport", "UnsafeEvictionPolicy", "inspect_redis"]


@dataclass(slots=True)
class RedisReport:
    eviction_policy: str | None = None
    persistence: str = "unknown"
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _config_get(redis: Redis, name: str) -> str | None:
    try:
        reply = await redis.config_get(name)
    except ResponseError:
        return None  # CONFIG disabled or renamed (managed Redis)
    value = reply.get(name) if reply else None
    return None if value is None else as_text(value)


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
