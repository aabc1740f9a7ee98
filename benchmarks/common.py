"""What every comparison shares: documents, percentiles, the machine's description."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
from typing import Any


def document(i: int) -> dict[str, Any]:
    """About 1 KB, like the write benchmarks before."""
    return {"name": f"user-{i}", "balance": i * 3, "tags": ["a", "b", str(i % 7)], "pad": "x" * 800}


def small_document(i: int) -> dict[str, Any]:
    """The drain benchmark's document (about 100 bytes)."""
    return {"name": f"user-{i}", "balance": i * 3, "tags": ["a", "b", str(i % 7)], "n": {"x": i}}


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by rank, of a non-empty list."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def load() -> str:
    """The load averages (1, 5, 15 minutes), to print beside every figure."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def machine() -> dict[str, Any]:
    """Cores, memory and the versions that matter."""
    import pymongo
    import redis

    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "redis_server": _version(["redis-server", "--version"]),
        "mongodb_server": "SecantusDB " + importlib.metadata.version("SecantusDB"),
        "redis_py": redis.__version__,
        "pymongo": pymongo.version,
        "load_at_start": load(),
    }


async def mark_seeded(wb: Any) -> None:
    """Mark every partition seeded on this Redis without reading MongoDB (the benchmarks
    pass no MongoDB: ``mongo=object()``); the first write of a partition would otherwise
    read the version floor from MongoDB (sdk/seeding.py)."""
    from writebehind.core.script_calls import call_script

    for p in range(wb.keys.partitions):
        await call_script(wb.redis, wb.scripts.seed, [wb.keys.stream(p), wb.keys.seeded(p)], [""])
