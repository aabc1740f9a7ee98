"""``writebehind replay`` against real servers: restores, never rolls back, is idempotent.

Most tests call the replay function directly; the CLI runs as a subprocess
(``python -m writebehind.cli replay``) where its exit code and output matter.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from typing import Any

import anyio
import bson
import pytest
from bson import Decimal128, ObjectId
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.ledger import Ledger, wait_all_landed, wait_settled
from tests.support.servers import RedisServer
from tests.support.streams import (
    GROUP,
    create_groups,
    dead_letters,
    ghost_read,
    ids_in_partition,
    pending_total,
    redis_now_ms,
    stream_ids,
    stream_of,
)
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.core.version import Version
from writebehind.sink.bulk import MongoSink
from writebehind.sink.reapply import Outcome
from writebehind.tools.dead_letters import purge_all
from writebehind.tools.replay import ReplayOptions, ReplayRange, ReplayResult, replay
from writebehind.tools.replay.bounds import iso

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)
Cli = Callable[..., Awaitable[subprocess.CompletedProcess[str]]]
Contents = dict[Any, dict[str, Any]]


@pytest.fixture
def cli(redis_server: RedisServer, mongo_url: str, database_name: str) -> Cli:
    """Run ``writebehind replay`` as a subprocess against the test servers."""

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable, "-m", "writebehind.cli", "replay",
            "--redis-url", redis_server.url,
            "--mongo-url", mongo_url,
            "--database", database_name,
            "--prefix", TEST_PREFIX,
            "--partitions", str(TEST_PARTITIONS),
            "--log-format", "json",
            *args,
        ]  # fmt: skip
        with anyio.fail_after(60):
            proc = await anyio.run_process(command, check=False)
        return subprocess.CompletedProcess(
            command, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
        )

    return run


async def run_replay(
    redis: Redis, db: Any, since: str = "0", until: str | None = None, **options: Any
) -> ReplayResult:
    return await replay(
        redis,
        MongoSink(db, prefix=KEYS.prefix),
        KEYS,
        ReplayOptions(ReplayRange.parse(since, until), **options),
    )


async def contents(db: Any, name: str, *, purge_at: bool = False) -> Contents:
    """Every document of a collection by ``_id``; without tombstones' ``purge_at`` unless asked.

    A replayed tombstone gets a fresh purge time; its version and contents are what count.
    """
    found: Contents = {}
    async for doc in db[name].find({}):
        if not purge_at:
            doc["_wb"].pop("purge_at", None)
        found[doc["_id"]] = doc
    return found


ORDER_IDS: list[Any] = [
    *range(1, 11),
    ObjectId("65f000000000000000000001"),
    ObjectId("65f000000000000000000002"),
    uuid.UUID(int=7),
    uuid.UUID(int=8),
    "1",  # not the same document as 1
]


async def workload(wb: WriteBehind) -> None:
    """Sets, patches, deletes and re-creations over two collections and four id types."""
    users = wb.collection("users")
    orders = wb.collection("orders")
    for i in range(30):
        await users.set(
            f"u{i:02d}",
            {
                "name": f"user {i}",
                "n": 0,
                "at": dt.datetime(2024, 1, 1, 12, 0, i, 123000),
                "price": Decimal128(Decimal("1.10")),
                "looks_like_an_operator": "$name",
            },
        )
    for round_ in (1, 2):
        for i in range(30):
            await users.patch(f"u{i:02d}", {"n": round_})
    for i in range(6):
        await users.delete(f"u{i:02d}")
    for i in range(3):
        await users.set(f"u{i:02d}", {"name": "back again"})
    for n, order_id in enumerate(ORDER_IDS):
        await orders.set(order_id, {"total": n, "lines": [{"sku": "a", "qty": n}]})
    for n, order_id in enumerate(ORDER_IDS):
        await orders.patch(order_id, {"paid": n % 2 == 0})
    await orders.delete(1)


async def persisted_workload(wb: WriteBehind, start_worker: Any, redis: Redis) -> None:
    await start_worker()
    await workload(wb)
    await wait_settled(redis, KEYS)


def tombstones(docs: Contents) -> set[Any]:
    return {k for k, d in docs.items() if d["_wb"].get("deleted")}


async def test_replay_after_dropping_a_collection_restores_it_exactly(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any
) -> None:
    await persisted_workload(wb, start_worker, redis)
    users, orders = await contents(mongo_db, "users"), await contents(mongo_db, "orders")
    assert len(users) == 30 and tombstones(users) == {"u03", "u04", "u05"}

    await mongo_db.drop_collection("users")
    result = await run_replay(redis, mongo_db)

    restored = await contents(mongo_db, "users")
    assert restored == users  # every document, its fields, types and _wb.v; tombstones too
    for doc_id in tombstones(users):
        assert isinstance(
            (await mongo_db["users"].find_one({"_id": doc_id}))["_wb"]["purge_at"], dt.datetime
        )
    assert "writebehind_tombstone_ttl" in await mongo_db["users"].index_information()
    assert await contents(mongo_db, "orders") == orders

    counts = result.report.counts
    assert counts["users"][Outcome.INSERTED.value] == 27
    assert counts["users"][Outcome.DELETED.value] == 3
    assert counts["users"][Outcome.SKIPPED_NEWER.value] == 0
    assert counts["orders"][Outcome.SKIPPED_NEWER.value] == len(ORDER_IDS)
    assert result.records == result.read == 30 + 60 + 6 + 3 + 2 * len(ORDER_IDS) + 1
    assert result.dead_lettered == result.malformed == 0


async def test_replay_twice_equals_replay_once(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await persisted_workload(wb, start_worker, redis)
    await mongo_db.drop_collection("users")

    first = await cli("--since", "0", "--json")
    assert first.returncode == 0, first.stderr
    once = await contents(mongo_db, "users", purge_at=True)
    second = await cli("--since", "0", "--json")
    assert second.returncode == 0, second.stderr
    assert await contents(mongo_db, "users", purge_at=True) == once  # purge times included

    report = json.loads(second.stdout)
    totals = report["totals"]
    assert totals["applied"] == 0
    assert totals["skipped_newer"] == 30 + len(ORDER_IDS)
    assert totals["records"] == totals["skipped_newer"] + totals["coalesced"]
    assert totals["dead_lettered"] == totals["malformed"] == 0
    assert report["dry_run"] is False
    assert report["since"] == "0-0"
    assert report["partitions"] == [0, 1, 2, 3]
    assert report["collections"]["users"]["counts"]["skipped_newer"] == 30
    assert isinstance(report["seconds"], float)
    assert json.loads(first.stdout)["totals"]["inserted"] == 27
    # --json prints no progress line, and nothing but the JSON goes to stdout.
    assert "ETA" not in first.stderr + second.stderr


async def test_replay_over_newer_state_changes_nothing(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any
) -> None:
    await start_worker()
    users = wb.collection("users")
    first = [await users.set(f"d{i}", {"round": 1}) for i in range(20)]
    mark = max(first)
    # Ids are ordered per stream only: start the newer writes in a later millisecond,
    # so that every record up to the mark's millisecond is an older one.
    await wait_until(lambda: _later(redis, mark.ms), message="Redis clock past the mark")
    for i in range(20):
        if i % 4 == 0:
            await users.delete(f"d{i}")
        else:
            await users.set(f"d{i}", {"round": 2})
    await wait_settled(redis, KEYS)
    newer = await contents(mongo_db, "users", purge_at=True)
    assert tombstones(newer) == {f"d{i}" for i in range(0, 20, 4)}

    # The older records, up to the mark: every one is behind what MongoDB holds.
    result = await run_replay(redis, mongo_db, until=str(mark.ms))
    assert await contents(mongo_db, "users", purge_at=True) == newer  # deletes stuck too
    assert result.records == 20
    assert result.report.total(Outcome.SKIPPED_NEWER) == 20
    assert result.applied == 0

    # Everything: the newest records equal what is stored, so still nothing changes.
    result = await run_replay(redis, mongo_db, batch_size=3)
    assert await contents(mongo_db, "users", purge_at=True) == newer
    assert result.applied == 0


async def test_dry_run_writes_nothing_and_its_counts_match_the_real_run(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await persisted_workload(wb, start_worker, redis)
    persisted = await contents(mongo_db, "users")
    # Make MongoDB disagree with the streams in every way a replay can meet:
    coll = mongo_db["users"]
    await coll.delete_many({"_id": {"$in": ["u10", "u11", "u12"]}})  # lost: insert
    await coll.update_many(  # older version: update
        {"_id": {"$in": ["u20", "u21"]}}, {"$set": {"_wb.v": [0, 1], "stale": True}}
    )
    await coll.delete_many({"_id": {"$in": ["u03", "u04"]}})  # lost tombstones: delete
    before = await contents(mongo_db, "users", purge_at=True)
    orders_before = await contents(mongo_db, "orders", purge_at=True)

    # Small batches, so a document's records fall in several chunks: the dry run
    # must predict later chunks against what earlier ones would have written.
    dry = await cli("--since", "0", "--dry-run", "--json", "--batch-size", "7")
    assert dry.returncode == 0, dry.stderr
    assert await contents(mongo_db, "users", purge_at=True) == before
    assert await contents(mongo_db, "orders", purge_at=True) == orders_before
    predicted = json.loads(dry.stdout)
    assert predicted["dry_run"] is True
    users_counts = predicted["collections"]["users"]["counts"]
    # The three lost documents, and the two lost tombstones' documents (whose first
    # records come in earlier chunks than their deletes).
    assert users_counts["inserted"] == 5
    assert users_counts["deleted"] == 2
    assert users_counts["updated"] > 2  # the stale two, then later chunks of the inserted
    assert users_counts["skipped_newer"] > 0

    result = await run_replay(redis, mongo_db, batch_size=7)
    assert result.report.as_dict()["collections"] == predicted["collections"]
    assert result.as_dict()["totals"] == predicted["totals"]
    assert await contents(mongo_db, "users") == persisted


async def test_dry_run_text_summary_and_progress_line(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await persisted_workload(wb, start_worker, redis)
    await mongo_db.drop_collection("orders")
    before = await contents(mongo_db, "orders")

    shown = await cli("--since", "0", "--dry-run", "--progress")
    assert shown.returncode == 0, shown.stderr
    assert await contents(mongo_db, "orders") == before == {}
    out = shown.stdout
    assert out.startswith("Dry run, nothing was written. Would replay 130 records")
    assert "  would apply       15  (insert 14, update 0, delete 1)\n" in out
    # One chunk per partition stream, so every document's records coalesce.
    assert "  orders: insert 14, update 0, delete 1, skip as newer 0, coalesced 16\n" in out
    assert "      insert, e.g.: " in out
    assert "  users: insert 0, update 0, delete 0, skip as newer 30, coalesced 69\n" in out
    # The progress line: records done of the estimated total, a rate and an ETA.
    assert "130/~130 records  100%" in shown.stderr
    assert "/s  ETA " in shown.stderr

    quiet = await cli("--since", "0", "--dry-run")  # not a terminal: no progress line
    assert quiet.returncode == 0, quiet.stderr
    assert "ETA" not in quiet.stderr
    assert "records" in quiet.stdout


async def test_collection_and_partition_filters(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await persisted_workload(wb, start_worker, redis)
    users, orders = await contents(mongo_db, "users"), await contents(mongo_db, "orders")
    await mongo_db.drop_collection("users")
    await mongo_db.drop_collection("orders")
    partition = 2
    in_partition = {k: d for k, d in orders.items() if KEYS.partition_of("orders", k) == partition}
    assert 0 < len(in_partition) < len(orders)

    shown = await cli("--since", "0", "--collection", "orders", "--partition", str(partition))
    assert shown.returncode == 0, shown.stderr
    assert await contents(mongo_db, "orders") == in_partition
    assert await contents(mongo_db, "users") == {}
    assert "(orders; partition 2)" in shown.stdout

    result = await run_replay(redis, mongo_db, collection="users")
    assert await contents(mongo_db, "users") == users
    assert await contents(mongo_db, "orders") == in_partition
    assert set(result.report.counts) == {"users"}
    assert result.read > result.records  # orders were read and passed over


async def test_since_by_iso_time_and_by_stream_id(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await start_worker()
    users = wb.collection("users")
    early = [await users.set(f"early-{i}", {"i": i}) for i in range(5)]
    # The late records start in a later millisecond than every early one.
    await wait_until(
        lambda: _later(redis, max(early).ms), message="Redis clock past the early writes"
    )
    late_ids = ids_in_partition(KEYS, "users", 1, 4, stem="late")
    late = [await users.set(doc_id, {"late": True}) for doc_id in late_ids]
    await wait_settled(redis, KEYS)
    everything = await contents(mongo_db, "users")
    late_docs = {k: d for k, d in everything.items() if k in late_ids}

    # An ISO time with an offset: the same instant as the first late record's millisecond.
    since = dt.datetime.fromtimestamp(
        late[0].ms / 1000, tz=dt.timezone(dt.timedelta(hours=2))
    ).isoformat(timespec="milliseconds")
    assert since.endswith("+02:00")
    await mongo_db.drop_collection("users")
    shown = await cli("--since", since)
    assert shown.returncode == 0, shown.stderr
    assert await contents(mongo_db, "users") == late_docs
    assert f"from {iso(late[0].ms)} ({late[0].ms}-0)" in shown.stdout

    # A naive ISO time is UTC.
    await mongo_db.drop_collection("users")
    naive = iso(late[0].ms).removesuffix("Z")
    assert (await run_replay(redis, mongo_db, since=naive)).records == 4
    assert await contents(mongo_db, "users") == late_docs

    # By stream id: exact, down to the entry (the late ones share one stream).
    await mongo_db.drop_collection("users")
    await run_replay(redis, mongo_db, since=str(late[1]))
    assert await contents(mongo_db, "users") == {k: late_docs[k] for k in late_ids[1:]}
    # And an id as UNTIL is inclusive.
    await mongo_db.drop_collection("users")
    await run_replay(redis, mongo_db, since=str(late[1]), until=str(late[2]))
    assert set(await contents(mongo_db, "users")) == set(late_ids[1:3])


async def _later(redis: Redis, ms: int) -> bool:
    return await redis_now_ms(redis) > ms


async def test_trimmed_history_is_refused_unless_allowed(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await persisted_workload(wb, start_worker, redis)
    users = await contents(mongo_db, "users")
    trimmed_partition = 1
    stream = KEYS.stream(trimmed_partition)
    ids = await stream_ids(redis, stream)
    keep_from = Version.parse(ids[len(ids) // 2])
    # As the workers' retention trim does: everything before an id goes.
    assert await redis.xtrim(stream, minid=str(keep_from), approximate=False) == len(ids) // 2
    await mongo_db.drop_collection("users")

    refused = await cli("--since", "2024-01-01T00:00:00Z")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "older than the retained history of partition 1" in refused.stderr
    assert f"{iso(keep_from.ms)} (id {keep_from})" in refused.stderr
    assert await contents(mongo_db, "users") == {}  # nothing was replayed

    refused_json = await cli("--since", "0", "--json", "--dry-run")
    assert refused_json.returncode == 3
    answer = json.loads(refused_json.stdout)
    assert answer["error"] == "history_gap"
    assert answer["resume_from"] == str(keep_from)
    assert [g["partition"] for g in answer["gaps"]] == [trimmed_partition]

    # From the first retained entry there is no gap.
    assert (await cli("--since", str(keep_from), "--dry-run")).returncode == 0

    allowed = await cli("--since", "0", "--allow-gap")
    assert allowed.returncode == 0, allowed.stderr
    assert "Warning: partition 1 lost records after SINCE" in allowed.stdout
    restored = await contents(mongo_db, "users")
    for doc_id, doc in users.items():
        if KEYS.partition_of("users", doc_id) != trimmed_partition:
            assert restored[doc_id] == doc
    # Of the trimmed partition, every document with a retained record is back at its
    # newest version (the retained part is the stream's newest end).
    trimmed_docs = [k for k in users if KEYS.partition_of("users", k) == trimmed_partition]
    back = [k for k in trimmed_docs if k in restored]
    assert back
    for doc_id in back:
        assert restored[doc_id] == users[doc_id]


async def test_replay_while_a_worker_runs_ends_consistent(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any
) -> None:
    await start_worker()
    ledger = Ledger(KEYS, "docs")
    coll = wb.collection("docs")
    await ledger.backlog(coll, writes=300, docs=60)
    await wait_all_landed(mongo_db, ledger)

    # MongoDB loses the collection while producers and the worker carry on; the
    # producer only touches docs 0..29, so 30..59 come back through replay alone.
    stop = anyio.Event()
    results: list[ReplayResult] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(ledger.produce, coll, stop, docs=30, chunk=5, pause=0.005))
        await mongo_db.drop_collection("docs")
        results.append(await run_replay(redis, mongo_db, batch_size=20))
        results.append(await run_replay(redis, mongo_db, batch_size=20))
        stop.set()
    assert results[0].read >= 300
    assert results[0].applied > 0
    await wait_all_landed(mongo_db, ledger)


async def create_strict(mongo_db: Any) -> None:
    """A collection whose validator refuses documents without a ``name``: poison on demand."""
    await mongo_db.create_collection(
        "strict", validator={"$jsonSchema": {"bsonType": "object", "required": ["name"]}}
    )


async def test_refused_records_are_dead_lettered_without_acking_and_malformed_are_counted(
    wb: WriteBehind, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await create_strict(mongo_db)
    strict = wb.collection("strict")
    good = await strict.set("x", {"name": "ok"})
    # Keyed by document: stream ids are unique per stream only, and x and y may
    # sit in different partitions with the same id.
    poison = {
        "x": str(await strict.set("x", {"no_name": True})),  # the newest record of x
        "y": str(await strict.set("y", {"no_name": 1})),
    }
    await create_groups(redis, KEYS)
    # x's records are pending in a live-looking consumer; replay must not ack them.
    stream = stream_of(KEYS, "strict", "x")
    pending_x = await ghost_read(redis, stream)
    assert len(pending_x) >= 2
    malformed_id = (await redis.xadd(KEYS.stream(3), {"foo": "bar"})).decode()

    shown = await cli("--since", "0", "--json")
    assert shown.returncode == 4, shown.stdout + shown.stderr
    report = json.loads(shown.stdout)
    totals = report["totals"]
    assert (totals["failed"], totals["dead_lettered"], totals["inserted"]) == (2, 2, 1)
    assert totals["malformed"] == 1
    assert report["malformed_examples"] == [f"3/{malformed_id}"]

    # The next newest record of x landed in its place, as the worker would do.
    stored = await mongo_db["strict"].find_one({"_id": "x"})
    assert stored == {"_id": "x", "name": "ok", "_wb": {"v": good.as_pair()}}
    assert await mongo_db["strict"].find_one({"_id": "y"}) is None

    letters = await dead_letters(redis, KEYS)
    by_doc = {bson.decode(letter["d"])["_id"]: letter for letter in letters}
    assert {doc: letter["source_id"].decode() for doc, letter in by_doc.items()} == poison
    for doc_id, letter in by_doc.items():
        assert letter["partition"] == str(KEYS.partition_of("strict", doc_id)).encode()
        assert letter["consumer"] == b"replay"
        assert (letter["c"], letter["op"]) == (b"strict", b"set")
        assert (letter["error_kind"], letter["error_code"]) == (b"permanent", b"121")
        assert letter["ov"] == letter["source_id"]
        assert set(letter) >= {"d", "error", "deliveries", "failed_at_ms"}
    # Nothing acknowledged: the consumer still holds every entry it read.
    rows = await redis.xpending_range(stream, GROUP, "-", "+", 10)
    assert sorted(r["message_id"] for r in rows) == sorted(pending_x)
    assert await pending_total(redis, KEYS) == len(pending_x)

    # Again: the same two are refused, and their letters are already there.
    text = await cli("--since", "0")
    assert text.returncode == 4
    assert "2 records were refused by MongoDB and already dead-lettered" in text.stdout
    assert "no new letter written" in text.stdout
    assert "writebehind dlq list" in text.stdout
    assert len(await dead_letters(redis, KEYS)) == 2


def sources(letters: list[dict[str, bytes]]) -> list[tuple[int, str]]:
    """Each letter's source entry, as (partition, entry id): ids are unique per stream only."""
    return sorted((int(x["partition"]), x["source_id"].decode()) for x in letters)


def source_of(doc_id: str, version: Version) -> tuple[int, str]:
    return KEYS.partition_of("strict", doc_id), str(version)


async def test_replay_adds_no_letter_for_a_record_the_worker_dead_lettered(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await create_strict(mongo_db)
    strict = wb.collection("strict")
    poison = await strict.set("p", {"no_name": True})
    good = await strict.set("g", {"name": "ok"})
    worker = await start_worker()
    await strict.wait_persisted(good, timeout=20)

    async def worker_letters() -> list[dict[str, bytes]]:
        return await dead_letters(redis, KEYS)

    [letter] = await wait_until(worker_letters, message="the worker's dead letter")
    assert sources([letter]) == [source_of("p", poison)]
    assert letter["consumer"] == worker.settings.consumer.encode()
    partition = KEYS.partition_of("strict", "p")
    [letter_id] = [i for i, _ in await redis.xrange(KEYS.dead_letters(partition))]

    for _ in range(2):  # replaying again changes nothing either
        shown = await cli("--since", "0", "--json")
        assert shown.returncode == 4, shown.stdout + shown.stderr
        totals = json.loads(shown.stdout)["totals"]
        assert (totals["failed"], totals["dead_lettered"]) == (1, 0)
        assert totals["already_dead_lettered"] == 1
        assert [i for i, _ in await redis.xrange(KEYS.dead_letters(partition))] == [letter_id]
    assert len(await dead_letters(redis, KEYS)) == 1

    text = await cli("--since", "0")
    assert text.returncode == 4
    assert "  dead-lettered     0  (1 more already dead-lettered; no new letter)\n" in text.stdout
    assert "1 record was refused by MongoDB and already dead-lettered" in text.stdout

    # Once the letter is purged, the record is dead-lettered anew, once.
    await redis.xdel(KEYS.dead_letters(partition), letter_id)
    first = await run_replay(redis, mongo_db)
    again = await run_replay(redis, mongo_db)
    assert (first.dead_lettered, first.already_dead_lettered) == (1, 0)
    assert (again.dead_lettered, again.already_dead_lettered) == (0, 1)
    [anew] = await dead_letters(redis, KEYS)
    assert anew["consumer"] == b"replay" and sources([anew]) == [source_of("p", poison)]


async def test_replaying_twice_without_a_worker_leaves_one_letter_per_record(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await create_strict(mongo_db)
    strict = wb.collection("strict")
    poison = [await strict.set(f"p{i}", {"no_name": i}) for i in range(3)]
    await strict.set("g", {"name": "ok"})

    first = await run_replay(redis, mongo_db, batch_size=2)
    letters = await dead_letters(redis, KEYS)
    second = await run_replay(redis, mongo_db)

    assert (first.dead_lettered, first.already_dead_lettered, first.refused) == (3, 0, 3)
    assert (second.dead_lettered, second.already_dead_lettered, second.refused) == (0, 3, 3)
    assert second.as_dict()["totals"]["already_dead_lettered"] == 3
    assert await dead_letters(redis, KEYS) == letters  # the same letters, none added
    assert sources(letters) == sorted(source_of(f"p{i}", v) for i, v in enumerate(poison))


async def test_concurrent_replays_of_one_range_leave_one_letter(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await create_strict(mongo_db)
    strict = wb.collection("strict")
    poison = [await strict.set(f"p{i}", {"no_name": i}) for i in range(20)]

    results: list[ReplayResult] = []

    async def one() -> None:
        results.append(await run_replay(redis, mongo_db, batch_size=3))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)

    letters = await dead_letters(redis, KEYS)
    assert sources(letters) == sorted(source_of(f"p{i}", v) for i, v in enumerate(poison))
    assert sum(r.dead_lettered for r in results) == 20
    assert all(r.refused == 20 for r in results)


async def test_a_partition_count_other_than_the_deployments_is_refused(
    wb: WriteBehind, redis: Redis, mongo_db: Any, cli: Cli
) -> None:
    await wb.collection("users").set("a", {"n": 1})  # the deployment records 4 partitions
    shown = await cli("--since", "0", "--partitions", "8")  # the later flag wins
    assert shown.returncode == 1
    assert "configured with 8 partitions but Redis records 4" in shown.stderr
    assert await contents(mongo_db, "users") == {}


async def test_a_worker_adds_no_letter_for_an_entry_replay_dead_lettered_first(
    wb: WriteBehind, start_worker: Any, redis: Redis, mongo_db: Any
) -> None:
    # Replay runs beside live workers: it may dead-letter an entry that a worker
    # (here a crashed one) still holds pending. The worker's move acks it, no letter.
    await create_strict(mongo_db)
    strict = wb.collection("strict")
    poison = await strict.set("p", {"no_name": True})
    stream = KEYS.stream(KEYS.partition_of("strict", "p"))
    await create_groups(redis, KEYS)
    assert await ghost_read(redis, stream, "crashed") == [str(poison).encode()]

    result = await run_replay(redis, mongo_db)
    assert result.dead_lettered == 1
    worker = await start_worker()  # claims the crashed consumer's entry, fails it for good

    async def acknowledged() -> bool:
        return (await redis.xpending(stream, GROUP))["pending"] == 0

    await wait_until(acknowledged, message="the worker to settle the claimed entry")
    assert worker.stats.claimed == 1
    [letter] = await dead_letters(redis, KEYS)
    assert letter["consumer"] == b"replay"
    assert sources([letter]) == [source_of("p", poison)]


async def test_purging_letters_forgets_their_entries(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await create_strict(mongo_db)
    strict = wb.collection("strict")
    for i in range(3):
        await strict.set(f"p{i}", {"no_name": i})
    assert (await run_replay(redis, mongo_db)).dead_lettered == 3
    indexes = [KEYS.dead_letter_sources(p) for p in range(KEYS.partitions)]
    assert sum([await redis.hlen(key) for key in indexes]) == 3

    assert await purge_all(redis, KEYS) == 3
    assert sum([await redis.hlen(key) for key in indexes]) == 0
    # Forgotten, so a replay dead-letters them again (once).
    assert (await run_replay(redis, mongo_db)).dead_lettered == 3
    assert (await run_replay(redis, mongo_db)).dead_lettered == 0
