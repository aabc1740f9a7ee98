"""``stats``, ``check``, ``dlq`` and ``replay`` with ``--redis-cluster`` against a Redis Cluster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.cluster import CLUSTER_PARTITIONS
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio

REQUIRE_NAME = {"$jsonSchema": {"required": ["name"]}}


async def test_stats_check_dlq_and_replay_on_a_cluster(
    cluster_wb: WriteBehind, start_cluster_worker: Any, mongo_db: Any, cluster_cli: Cli
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = cluster_wb.collection("people")
    for i in range(24):
        await people.set(f"p{i}", {"name": f"n{i}"})
    bad = await people.set("nameless", {"nickname": "x"})

    before = await cluster_cli("stats", "--json")
    assert before.code == 0, before.stderr
    assert before.json()["stream_length"] == 25
    assert len(before.json()["partitions"]) == CLUSTER_PARTITIONS

    await start_cluster_worker()

    async def one_letter() -> Any:
        listed = await cluster_cli("dlq", "list", "--json")
        assert listed.code == 0, listed.stderr
        return [row for row in listed.json()["dead_letters"] if row["collection"] == "people"]

    [letter] = await wait_until(one_letter, message="the nameless document's dead letter")
    assert await mongo_db["people"].count_documents({}) == 24

    after = await cluster_cli("stats", "--json")
    assert after.code == 0, after.stderr
    assert after.json()["dead_letters"] == 1

    checked = await cluster_cli("check", "--json")
    findings = {f["check"]: f["level"] for f in checked.json()["findings"]}
    assert findings["consumer group"] == "ok", checked.stdout + checked.stderr

    await mongo_db.command("collMod", "people", validator={})
    redriven = await cluster_cli("dlq", "replay", "--all", "--json")
    assert redriven.code == 0, redriven.stderr
    assert redriven.json()["totals"]["inserted"] == 1
    stored = await mongo_db["people"].find_one({"_id": "nameless"})
    assert stored["_wb"]["v"] == [bad.ms, bad.seq]
    assert letter["id"].split("/")[0].isdigit()

    await mongo_db.drop_collection("people")
    replayed = await cluster_cli("replay", "--since", "0", "--json")
    assert replayed.code == 0, replayed.stderr
    assert replayed.json()["partitions"] == list(range(CLUSTER_PARTITIONS))
    assert await mongo_db["people"].count_documents({}) == 25


async def test_partitions_set_on_a_cluster(
    cluster_wb: WriteBehind, start_cluster_worker: Any, cluster_cli: Cli, cluster_redis: Any
) -> None:
    users = cluster_wb.collection("users")
    versions = [await users.set(f"u{i}", {"n": i}) for i in range(30)]
    worker = await start_cluster_worker()
    for version in versions:
        await users.wait_persisted(version, timeout=20)
    worker.request_stop()

    async def changed() -> Any:
        result = await cluster_cli(
            "partitions", "set", "24", "--worker-idle", "0.3s", "--quiet", "0s", "--json"
        )
        return result if result.code == 0 else None

    report = (await wait_until(changed, timeout=20, message="the stopped worker to go idle")).json()
    assert (report["old"], report["new"], report["cache_entries_deleted"]) == (12, 24, 30)
    assert await cluster_redis.hget(cluster_wb.keys.meta, "partitions") == b"24"
    assert [k async for k in cluster_redis.scan_iter(match="{t:p*}:doc:*")] == []


async def test_a_cluster_node_without_redis_cluster_is_one_line_saying_so(cluster_cli: Cli) -> None:
    # The same node, as a plain Redis: MOVED replies, named as such (was "Redis (...): 7466
    # 127.0.0.1:port", and an "internal error" with --redis-cluster on a plain Redis).
    plain = Cli(
        cluster_cli.redis_url, cluster_cli.mongo_url, cluster_cli.database, CLUSTER_PARTITIONS
    )
    for args in (["stats"], ["replay", "--since", "0"], ["worker", "--metrics-address", "off"]):
        result = await plain(*args)
        assert result.code == 1, result.stderr
        [line] = [x for x in result.stderr.splitlines() if x.startswith("Error: ")]
        assert "MovedError" in line and "give --redis-cluster (WRITEBEHIND_REDIS_CLUSTER)" in line
        assert "Traceback" not in result.stderr
