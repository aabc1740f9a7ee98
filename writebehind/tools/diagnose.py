"""``writebehind check``: is this deployment safe to run, and what state is it in?"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any

from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from writebehind.core.deployment import CODEC_FIELD, recorded_partition_count
from writebehind.core.groups import consumer_groups
from writebehind.core.keys import KeySpace
from writebehind.core.redis_checks import inspect_redis
from writebehind.core.replies import as_text
from writebehind.tools.stream_stats import collect


class Level(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    level: Level
    detail: str


@dataclass(slots=True)
class Diagnosis:
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, level: Level, detail: str) -> None:
        self.findings.append(Finding(check, level, detail))

    @property
    def failed(self) -> bool:
        return any(f.level is Level.FAIL for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "findings": [
                {"check": f.check, "level": f.level.value, "detail": f.detail}
                for f in self.findings
            ],
        }


def _reason(where: str, exc: BaseException, limit: float) -> str:
    """``<server>: <why>``; a timeout says how long it waited (its message is empty)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        why = f"no answer within {limit:g} s (TimeoutError)"
    else:
        # PyMongo's server selection message ends in a topology dump: keep the cause.
        text = " ".join(str(exc).split()).split(", Timeout:")[0]
        why = f"{type(exc).__name__}: {text[:300]}"
    return f"{where}: {why}" if where else why


async def _timed(call: Any, limit: float) -> Any:
    # asyncio.wait_for, not an anyio scope: PyMongo needs a one-shot cancel.
    return await asyncio.wait_for(call, timeout=limit)


async def diagnose(
    redis: Redis,
    database: Any,
    keys: KeySpace,
    group: str,
    write_concern: WriteConcern,
    limit: float = 5.0,
    *,
    servers: dict[str, str] | None = None,
) -> Diagnosis:
    """Check both servers; ``servers`` names them in failures (redacted URLs, by
    ``"redis"`` and ``"mongodb"``); ``limit`` is in seconds per call.

    A server that does not answer is a ``FAIL`` finding, not an exception;
    ``redis.exceptions.RedisError`` may still come from the stream checks.
    """
    result = Diagnosis()
    names = servers or {}
    if await _check_redis(result, redis, keys, group, limit, names.get("redis", "")):
        await _check_streams(result, redis, keys, group)
    await _check_mongo(result, database, write_concern, limit, names.get("mongodb", ""))
    return result


async def _check_redis(
    result: Diagnosis, redis: Redis, keys: KeySpace, group: str, limit: float, where: str = ""
) -> bool:
    try:
        await _timed(redis.ping(), limit)
    except Exception as exc:
        result.add("redis reachable", Level.FAIL, _reason(where, exc, limit))
        return False
    result.add("redis reachable", Level.OK, "PING answered")
    report = await inspect_redis(redis, strict=False)
    for error in report.errors:
        result.add("redis eviction policy", Level.FAIL, error)
    if not report.errors:
        result.add("redis eviction policy", Level.OK, str(report.eviction_policy))
    persistence_warnings = [w for w in report.warnings if "persist" in w]
    for warning in report.warnings:
        check = "redis persistence" if warning in persistence_warnings else "redis config"
        result.add(check, Level.WARN, warning)
    if not persistence_warnings:
        result.add("redis persistence", Level.OK, report.persistence)
    stored = await recorded_partition_count(redis, keys)
    if stored is None:
        result.add(
            "partition count", Level.WARN, f"none recorded yet (configured {keys.partitions})"
        )
    elif stored != keys.partitions:
        result.add(
            "partition count",
            Level.FAIL,
            f"configured {keys.partitions}, Redis records {stored} for prefix {keys.prefix!r}",
        )
    else:
        result.add("partition count", Level.OK, f"{keys.partitions}")
    # The workers and tools read records with what producers recorded (core/deployment.py).
    codec = await redis.hget(keys.meta, CODEC_FIELD)
    if codec is None:
        result.add("codec options", Level.WARN, "none recorded yet (no producer has started)")
    else:
        result.add("codec options", Level.OK, as_text(codec))
    return True


async def _check_streams(result: Diagnosis, redis: Redis, keys: KeySpace, group: str) -> None:
    # The same numbers `writebehind stats` shows.
    stats = await collect(redis, keys, group)
    missing = [p.partition for p in stats.partitions if not p.group_exists]
    if missing:
        result.add(
            "consumer group",
            Level.WARN,
            f"group {group!r} missing on partitions {missing}: no worker has started yet",
        )
        return
    result.add(
        "consumer group",
        Level.OK,
        f"{group!r} on every partition; {len(stats.consumers)} consumers, "
        f"{stats.pending} pending, {stats.lag} lag",
    )
    await _check_other_groups(result, redis, keys, group)


async def _check_other_groups(result: Diagnosis, redis: Redis, keys: KeySpace, group: str) -> None:
    """Workers never trim what any group has not read: an abandoned one grows the streams."""
    others: dict[str, list[int]] = {}
    for partition in range(keys.partitions):
        stream = keys.stream(partition)
        for info in await consumer_groups(redis, stream):
            if info["name"] != group:
                others.setdefault(info["name"], []).append(partition)
    if not others:
        result.add("other consumer groups", Level.OK, "none")
        return
    listed = "; ".join(f"{name!r} on partitions {parts}" for name, parts in sorted(others.items()))
    result.add(
        "other consumer groups",
        Level.WARN,
        f"{listed}: trimming keeps what they have not read; destroy them if abandoned",
    )


async def _check_mongo(
    result: Diagnosis, database: Any, write_concern: WriteConcern, limit: float, where: str = ""
) -> None:
    try:
        await _timed(database.command("ping"), limit)
    except Exception as exc:
        result.add("mongodb reachable", Level.FAIL, _reason(where, exc, limit))
        return
    result.add("mongodb reachable", Level.OK, "ping answered")
    probe = database.get_collection("writebehind_check", write_concern=write_concern)
    try:
        await _timed(probe.replace_one({"_id": "probe"}, {"_id": "probe"}, upsert=True), limit)
        await _timed(probe.drop(), limit)
    except Exception as exc:
        result.add(
            "mongodb write concern",
            Level.FAIL,
            f"a write with {write_concern.document} failed: {_reason(where, exc, limit)}",
        )
        return
    result.add("mongodb write concern", Level.OK, f"{write_concern.document} acknowledged")
