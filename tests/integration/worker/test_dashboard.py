"""The Grafana dashboard's gauge panels, evaluated over the /metrics of two running workers,
read what `writebehind stats` reads: each worker exports the deployment-wide values, so a
panel must not add the workers' copies up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.http import http_get
from tests.support.invalidator import sdk_and_invalidator_metrics
from tests.support.promql import Vector, evaluate, metric_names, scalar, scrape
from tests.support.streams import GROUP, create_groups, ghost_read
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.observability.metrics import WorkerMetrics
from writebehind.sdk.near import NearCache
from writebehind.tools.stream_stats import collect
from writebehind.worker.counters import WorkerCounters

pytestmark = pytest.mark.anyio

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy/grafana/writebehind-dashboard.json"
KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)


def panels() -> dict[str, list[str]]:
    board = json.loads(DASHBOARD.read_text())
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in board["panels"]}


def query(title: str, index: int = 0) -> str:
    return panels()[title][index]


async def test_gauge_panels_count_the_deployment_once_with_two_workers(
    redis: Redis, start_worker: Any
) -> None:
    await create_groups(redis, KEYS)
    for n in range(4):  # pending: delivered to a consumer that vanished
        await redis.xadd(KEYS.stream(2), {"op": "junk", "n": n})
    assert len(await ghost_read(redis, KEYS.stream(2))) == 4
    for n in range(3):  # dead letters
        await redis.xadd(KEYS.dead_letters(1), {"op": "set", "c": "x", "ov": f"{n + 1}-0"})

    workers = [
        await start_worker(metrics_address="127.0.0.1:0", gauge_interval=0.1, claim_idle="1h")
        for _ in range(2)
    ]

    async def both_scraped() -> dict[str, str] | None:
        texts = {f"w{i}": (await http_get(w.metrics_port, "/metrics"))[1]
                 for i, w in enumerate(workers)}  # fmt: skip
        ready = all('writebehind_dead_letters{partition="1"} 3.0' in t for t in texts.values())
        return texts if ready else None

    samples = scrape(await wait_until(both_scraped, message="both workers' gauges"))
    truth = await collect(redis, KEYS, GROUP)
    assert (truth.pending, truth.dead_letters) == (4, 3)

    assert scalar(query("Backlog: pending and lag", 0), samples) == truth.pending
    assert scalar(query("Backlog: pending and lag", 1), samples) == truth.lag
    assert scalar(query("Dead letters (depth)"), samples) == truth.dead_letters
    assert scalar(query("Oldest pending entry age"), samples) >= 0
    by_partition = {
        dict(labels)["partition"]: value
        for labels, value in evaluate(query("Pending by partition"), samples).items()
    }
    assert by_partition == {str(p.partition): float(p.pending) for p in truth.partitions}
    # What the panels read before: every worker's copy added up.
    assert scalar("sum(writebehind_dead_letters)", samples) == 2 * truth.dead_letters


def test_every_metric_the_dashboard_reads_is_exported() -> None:
    import writebehind.sdk.metrics  # noqa: F401 - registers the SDK's counters

    exported = generate_latest(WorkerMetrics(WorkerCounters()).registry).decode()
    exported += generate_latest(REGISTRY).decode()
    names = {line.split()[2] for line in exported.splitlines() if line.startswith("# TYPE")}
    names |= sdk_and_invalidator_metrics()  # the near cache's and `writebehind invalidate`'s
    for title, expressions in panels().items():
        for expression in expressions:
            for name in metric_names(expression):
                base = name.removesuffix("_bucket").removesuffix("_total")
                assert base in names or name in names, (title, name)


NEAR = NearCache(max_entries=100, ttl=60.0, max_stale=0.5)


def _registry_samples(instance: str) -> Vector:
    return scrape({instance: generate_latest(REGISTRY).decode()})


def _since(before: Vector, after: Vector) -> Vector:
    """What the counters counted between two scrapes of one process."""
    return {labels: value - before.get(labels, 0.0) for labels, value in after.items()}


async def test_the_hit_ratio_counts_near_cache_answers_over_two_app_processes(
    wb: WriteBehind,
) -> None:
    # Near-cache hits are answers too (level "near"): the panel left them out of both
    # sides, so a collection answered mostly in-process read as a poor Redis hit ratio.
    before = _registry_samples("app")
    docs = wb.collection("hitratio", reads=ReadPolicy(near=NEAR))
    await docs.set("a", {"n": 1})
    assert await docs.get("a") == {"_id": "a", "n": 1}  # Redis (then kept near)
    assert await docs.get("nowhere") is None  # MongoDB

    async def servable() -> bool:
        return wb.near.servable(NEAR)

    await wait_until(servable, message="the near-cache feed caught up")
    for _ in range(5):
        assert await docs.get("a") == {"_id": "a", "n": 1}
    counted = _since(before, _registry_samples("app"))

    def answers(levels: tuple[str, ...], outcomes: tuple[str, ...] | None = None) -> float:
        return sum(
            value
            for labels, value in counted.items()
            if dict(labels).get("__name__") == "writebehind_sdk_reads_total"
            and dict(labels).get("collection") == "hitratio"
            and dict(labels)["level"] in levels
            and (outcomes is None or dict(labels)["outcome"] in outcomes)
        )

    cached = answers(("near", "redis"), ("hit", "deleted", "negative_hit"))
    every = answers(("near", "redis", "mongodb", "degraded"))
    assert answers(("near",)) >= 1 and every > cached > 0, counted
    # A second app process that did the same: the ratio of the sums is the same ratio.
    two = {
        frozenset({*labels - {("instance", "app")}, ("instance", name)}): value
        for labels, value in counted.items()
        for name in ("app1", "app2")
    }
    [(labels, ratio)] = evaluate(
        query("SDK read hit ratio by collection", 0), two, counters_since_start=True
    ).items()
    assert dict(labels) == {"collection": "hitratio"}
    assert ratio == pytest.approx(cached / every)
    # No degraded answer: no series (as Prometheus has none) or 0.
    degraded = evaluate(
        query("SDK read hit ratio by collection", 1), two, counters_since_start=True
    )
    assert all(value == 0 for value in degraded.values()), degraded


def test_cached_computations_have_a_panel() -> None:
    read = {name for exprs in panels().values() for e in exprs for name in metric_names(e)}
    assert {"writebehind_sdk_computed_total", "writebehind_sdk_computed_journal_depth"} <= read
