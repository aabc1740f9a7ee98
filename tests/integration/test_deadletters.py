"""The dead-letter tools on real servers: letters made by a real worker, then
listed, shown, re-driven and purged, through the functions and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bson
import pytest
from redis.asyncio import Redis

from tests.support.cli import Cli
from tests.support.streams import ids_in_partition, stored_version
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.version import Version
from writebehind.tools.dead_letters import (
    UnknownLetters,
    dead_letter_ends,
    iter_letters,
    list_letters,
    purge,
    redrive_all,
    redrive_ids,
)
from writebehind.tools.letters import DeadLetter, LetterId

pytestmark = pytest.mark.anyio

REQUIRE_NAME = {"$jsonSchema": {"bsonType": "object", "required": ["name"]}}
REQUIRE_NAME_AND_AGE = {"$jsonSchema": {"bsonType": "object", "required": ["name", "age"]}}


async def wait_letters(redis: Redis, wb: WriteBehind, count: int) -> list[DeadLetter]:
    async def probe() -> list[DeadLetter] | None:
        letters = await list_letters(redis, wb.keys)
        return letters if len(letters) >= count else None

    letters = await wait_until(probe, timeout=20, message=f"{count} dead letter(s)")
    assert len(letters) == count
    return letters


async def relax_validator(mongo_db: Any, collection: str, validator: dict[str, Any]) -> None:
    await mongo_db.command("collMod", collection, validator=validator)


def by_doc(letters: list[DeadLetter]) -> dict[Any, DeadLetter]:
    return {letter.doc_id: letter for letter in letters}


async def test_each_dead_letter_shows_what_failed_and_why(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis, cli: Cli
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    await mongo_db.create_collection("pets", validator=REQUIRE_NAME)
    people, pets = wb.collection("people"), wb.collection("pets")
    bad_str = await people.set("u1", {"nickname": "no name"})
    bad_int = await people.set(42, {"nickname": "the answer"})
    good = await people.set("u2", {"name": "Bo"})
    bad_pet = await pets.set("rex", {"species": "dog"})
    worker = await start_worker()
    await people.wait_persisted(good, timeout=20)

    letters = await wait_letters(redis, wb, 3)
    found = by_doc(letters)
    assert set(found) == {"u1", 42, "rex"}
    for doc_id, coll, version in (("u1", "people", bad_str), (42, "people", bad_int),
                                  ("rex", "pets", bad_pet)):  # fmt: skip
        letter = found[doc_id]
        assert letter.collection == coll
        assert letter.version == version
        assert letter.source_id == str(version)
        assert letter.id.partition == wb.keys.partition_of(coll, doc_id)
        assert letter.op == "set"
        assert letter.error_code == 121
        assert letter.error_kind == "permanent"
        assert "validation" in letter.error.lower()
        assert letter.deliveries == 1
        assert letter.consumer == worker.settings.consumer
        assert letter.failed_at is not None and letter.failed_at_ms is not None
        assert letter.failed_at_ms >= version.ms
        assert letter.problem is None
    assert found[42].document() == {"_id": 42, "nickname": "the answer"}
    assert [x.doc_id for x in await list_letters(redis, wb.keys, collection="pets")] == ["rex"]

    listed = await cli("dlq", "list", "--json")
    assert listed.code == 0, listed.stderr
    body = listed.json()
    assert body["count"] == 3
    rows = {row["id"]: row for row in body["dead_letters"]}
    assert set(rows) == {str(x.id) for x in letters}
    row = rows[str(found[42].id)]
    assert row["collection"] == "people"
    assert row["document_id"] == 42
    assert row["version"] == str(bad_int)
    assert row["error_code"] == 121
    assert row["deliveries"] == 1
    assert row["failed_at"].endswith("Z")

    only_pets = (await cli("dlq", "list", "--json", "--collection", "pets")).json()
    assert [row["document_id"] for row in only_pets["dead_letters"]] == ["rex"]

    table = await cli("dlq", "list")
    assert table.code == 0, table.stderr
    for letter in letters:
        assert str(letter.id) in table.stdout
    assert "[121]" in table.stdout
    assert "'u1'" in table.stdout and "3 dead letters." in table.stdout

    shown = await cli("dlq", "show", str(found["u1"].id))
    assert shown.code == 0, shown.stderr
    assert str(bad_str) in shown.stdout
    assert found["u1"].error in shown.stdout
    assert '"nickname": "no name"' in shown.stdout
    shown_json = (await cli("dlq", "show", str(found["u1"].id), "--json")).json()
    assert shown_json["document"] == {"_id": "u1", "nickname": "no name"}


async def test_show_of_unknown_or_malformed_id_fails(wb: WriteBehind, cli: Cli) -> None:
    unknown = await cli("dlq", "show", "1/1-0")
    assert unknown.code == 1
    assert "no such dead letter: 1/1-0" in unknown.stderr
    malformed = await cli("dlq", "show", "1-0")
    assert malformed.code == 2
    assert "not a dead-letter ID" in malformed.stderr
    outside = await cli("dlq", "show", "9/1-0")
    assert outside.code == 2
    assert "partitions are 0 to 3" in outside.stderr
    redrive = await cli("dlq", "replay", "1/1-0")
    assert redrive.code == 1
    assert "no such dead letter: 1/1-0; nothing was re-driven" in redrive.stderr


async def test_letter_redriven_after_its_cause_is_fixed_lands_at_its_version(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis, cli: Cli
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    bad = await people.set("u1", {"nickname": "no name"})
    await start_worker()
    [letter] = await wait_letters(redis, wb, 1)
    assert await mongo_db["people"].find_one({"_id": "u1"}) is None

    await relax_validator(mongo_db, "people", {})
    done = await cli("dlq", "replay", "--all", "--json")
    assert done.code == 0, done.stderr
    report = done.json()
    assert report["dry_run"] is False
    assert report["totals"]["inserted"] == 1
    assert report["totals"]["removed"] == 1
    [row] = report["letters"]
    assert row["id"] == str(letter.id)
    assert row["outcome"] == "inserted"
    assert row["removed"] is True

    assert await mongo_db["people"].find_one({"_id": "u1"}) == {
        "_id": "u1",
        "nickname": "no name",
        "_wb": {"v": bad.as_pair()},
    }
    assert await list_letters(redis, wb.keys) == []
    assert await people.get("u1") == {"_id": "u1", "nickname": "no name"}
    # Again: nothing left to do, nothing changes.
    again = await cli("dlq", "replay", "--all")
    assert again.code == 0, again.stderr
    assert "No dead letters." in again.stdout
    assert await stored_version(mongo_db["people"], "u1") == bad


async def test_older_dead_letter_does_not_overwrite_a_newer_document(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    # "b": its newer write is in the stream before the older one is dead-lettered
    # (one record per batch), so the letter itself is newer than b2 as a stream
    # entry: only its original version keeps it from overwriting b2.
    b1 = await people.set("b", {"nickname": "b1"})
    b2 = await people.set("b", {"name": "b2"})
    a1 = await people.set("a", {"nickname": "a1"})
    await start_worker(batch_size=1)
    letters = by_doc(await wait_letters(redis, wb, 2))
    await people.wait_persisted(b2, timeout=20)
    assert letters["b"].version == b1 and Version.parse(letters["b"].id.entry_id) > b2
    # "a": the cause is fixed, then a newer write lands.
    await relax_validator(mongo_db, "people", {})
    a2 = await people.set("a", {"name": "a2"})
    await people.wait_persisted(a2, timeout=20)

    report = await redrive_ids(redis, mongo_db, wb.keys, [letters["a"].id, letters["b"].id])

    assert [(r.letter.doc_id, r.outcome, r.removed) for r in report.results] == [
        ("a", "skipped_newer", True),
        ("b", "skipped_newer", True),
    ]
    assert await mongo_db["people"].find_one({"_id": "a"}) == {
        "_id": "a",
        "name": "a2",
        "_wb": {"v": a2.as_pair()},
    }
    assert await mongo_db["people"].find_one({"_id": "b"}) == {
        "_id": "b",
        "name": "b2",
        "_wb": {"v": b2.as_pair()},
    }
    assert a1 < a2
    assert await list_letters(redis, wb.keys) == []


async def test_dry_run_changes_nothing_and_predicts_the_real_run(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis, cli: Cli
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    await people.set("u1", {"nickname": "a"})
    await people.set("u2", {"nickname": "b"})
    await start_worker()
    letters = await wait_letters(redis, wb, 2)
    await relax_validator(mongo_db, "people", {})
    newer = await people.set("u2", {"name": "newer"})
    await people.wait_persisted(newer, timeout=20)
    before = [(x.id, x.deliveries, x.error) for x in letters]

    dry = await cli("dlq", "replay", "--dry-run", "--json", *(str(x.id) for x in letters))
    assert dry.code == 0, dry.stderr
    predicted = dry.json()
    assert predicted["dry_run"] is True
    assert {r["id"]: (r["outcome"], r["removed"]) for r in predicted["letters"]} == {
        str(by_doc(letters)["u1"].id): ("inserted", False),
        str(by_doc(letters)["u2"].id): ("skipped_newer", False),
    }
    assert await mongo_db["people"].find_one({"_id": "u1"}) is None
    assert [(x.id, x.deliveries, x.error) for x in await list_letters(redis, wb.keys)] == before
    human = await cli("dlq", "replay", "--dry-run", "--all")
    assert human.code == 0, human.stderr
    assert "Dry run" in human.stdout and "would be removed" in human.stdout
    assert len(await list_letters(redis, wb.keys)) == 2

    real = await redrive_all(redis, mongo_db, wb.keys)
    assert real.as_dict()["totals"] | {"removed": 0} == predicted["totals"] | {"removed": 0}
    assert real.as_dict()["totals"]["removed"] == 2
    assert await stored_version(mongo_db["people"], "u1") == by_doc(letters)["u1"].version
    assert await stored_version(mongo_db["people"], "u2") == newer


async def test_letter_that_fails_again_stays_with_the_new_error(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis, cli: Cli
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    bad = await people.set("u1", {"nickname": "no name"})
    await start_worker()
    [letter] = await wait_letters(redis, wb, 1)
    # A different refusal this time: still no name, and now an age is required too.
    await relax_validator(mongo_db, "people", REQUIRE_NAME_AND_AGE)

    report = await redrive_ids(redis, mongo_db, wb.keys, [letter.id], consumer="op-test")

    [result] = report.results
    assert result.outcome == "failed"
    assert not result.removed
    assert result.error is not None and result.error.code == 121
    assert result.new_id is not None and result.new_id != letter.id
    [kept] = await list_letters(redis, wb.keys)
    assert kept.id == result.new_id
    assert kept.id.partition == letter.id.partition
    assert kept.deliveries == letter.deliveries + 1
    assert kept.consumer == "op-test"
    assert kept.version == letter.version == bad
    assert kept.source_id == letter.source_id
    assert kept.document() == letter.document()
    assert kept.failed_at_ms is not None and letter.failed_at_ms is not None
    assert kept.failed_at_ms >= letter.failed_at_ms
    assert await mongo_db["people"].find_one({"_id": "u1"}) is None

    # The CLI says so with a non-zero exit, and the letter stays (with a new ID again).
    again = await cli("dlq", "replay", str(kept.id))
    assert again.code == 4  # letters stay, as `writebehind replay` when it dead-letters
    assert "could not be re-driven" in again.stderr
    assert "failed" in again.stdout
    [still] = await list_letters(redis, wb.keys)
    assert still.deliveries == kept.deliveries + 1


async def test_a_letter_refused_again_is_replaced_and_replay_adds_none_beside_it(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis, cli: Cli
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    bad = await people.set("u1", {"nickname": "no name"})
    await start_worker()
    [letter] = await wait_letters(redis, wb, 1)

    redriven = await cli("dlq", "replay", "--all", "--json")
    assert redriven.code == 4, redriven.stdout + redriven.stderr
    [row] = redriven.json()["letters"]
    assert row["outcome"] == "failed" and row["new_id"] not in (None, str(letter.id))
    [kept] = await list_letters(redis, wb.keys)  # the old letter went with the new one's XADD
    assert str(kept.id) == row["new_id"] and kept.source_id == letter.source_id == str(bad)

    # A replay of the range meets the record again: its (re-added) letter is there.
    replayed = await cli("replay", "--since", "0", "--json")
    assert replayed.code == 4, replayed.stdout + replayed.stderr
    totals = replayed.json()["totals"]
    assert (totals["dead_lettered"], totals["already_dead_lettered"]) == (0, 1)
    assert [x.id for x in await list_letters(redis, wb.keys)] == [kept.id]

    await redrive_all(redis, mongo_db, wb.keys)
    [last] = await list_letters(redis, wb.keys)
    assert last.source_id == str(bad) and last.deliveries == letter.deliveries + 2


async def test_newest_letter_refused_again_lets_the_older_one_land(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME_AND_AGE)
    people = wb.collection("people")
    older = await people.set("u1", {"name": "has a name"})
    newer = await people.set("u1", {"age": 3})
    await start_worker()
    letters = await wait_letters(redis, wb, 2)
    assert sorted(x.version for x in letters if x.version) == [older, newer]
    await relax_validator(mongo_db, "people", REQUIRE_NAME)

    report = await redrive_all(redis, mongo_db, wb.keys)

    outcomes = {str(r.letter.version): r.outcome for r in report.results}
    assert outcomes == {str(older): "inserted", str(newer): "failed"}
    assert await stored_version(mongo_db["people"], "u1") == older
    [kept] = await list_letters(redis, wb.keys)
    assert kept.version == newer


async def test_purge_removes_the_given_letters_or_all(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis, cli: Cli
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    for doc_id in [*ids_in_partition(wb.keys, "people", 2, 2), "x", "y"]:
        await people.set(doc_id, {"nickname": doc_id})
    await start_worker()
    letters = await wait_letters(redis, wb, 4)
    first, second, *_ = letters

    gone = await cli("dlq", "purge", str(first.id))
    assert gone.code == 0, gone.stderr
    assert "Removed 1 dead letter." in gone.stdout
    assert first.id not in {x.id for x in await list_letters(redis, wb.keys)}

    unknown = await cli("dlq", "purge", str(second.id), str(first.id))
    assert unknown.code == 1
    assert f"no such dead letter: {first.id}" in unknown.stderr
    assert len(await list_letters(redis, wb.keys)) == 3
    with pytest.raises(UnknownLetters):
        await purge(redis, wb.keys, [LetterId(0, "1-0")])

    assert await purge(redis, wb.keys, [second.id]) == 1
    everything = await cli("dlq", "purge", "--all", "--yes")
    assert everything.code == 0, everything.stderr
    assert "Removed 2 dead letters." in everything.stdout
    assert await list_letters(redis, wb.keys) == []
    # Purged records are gone for good: MongoDB never got them.
    assert await mongo_db["people"].count_documents({}) == 0


async def test_malformed_letter_is_reported_and_kept(
    wb: WriteBehind, mongo_db: Any, redis: Redis
) -> None:
    # What the worker writes for a stream entry it could not decode.
    stream = wb.keys.dead_letters(1)
    entry = await redis.xadd(
        stream,
        {
            "op": "set", "c": "people", "d": b"\x05not bson", "ov": "5-0", "source_id": "5-0",
            "partition": 1, "error_kind": "permanent", "error_code": "",
            "error": "malformed record: InvalidBSON", "deliveries": 1, "failed_at_ms": 6,
            "consumer": "w",
        },
    )  # fmt: skip
    [letter] = await list_letters(redis, wb.keys)
    assert letter.id == LetterId(1, entry.decode())
    assert letter.problem is not None and "not decodable" in letter.problem
    assert letter.error_code is None
    assert letter.version == Version(5, 0)

    report = await redrive_all(redis, mongo_db, wb.keys)

    [result] = report.results
    assert result.outcome == "invalid"
    assert not result.removed
    assert await redis.xlen(stream) == 1
    assert bson.is_valid(letter.body) is False


async def test_letters_are_read_in_pages_up_to_a_snapshot(wb: WriteBehind, redis: Redis) -> None:
    async def add(partition: int, doc_id: str) -> LetterId:
        entry = await redis.xadd(
            wb.keys.dead_letters(partition),
            {"op": "set", "c": "people", "d": bson.encode({"_id": doc_id}), "ov": "1-0"},
        )
        return LetterId(partition, entry.decode())

    first = [await add(p, f"d{p}-{n}") for p in (0, 2) for n in range(5)]
    ends = await dead_letter_ends(redis, wb.keys)
    assert set(ends) == {0, 2}
    later = [await add(p, f"late{p}") for p in (0, 1)]

    paged = [x.id async for x in iter_letters(redis, wb.keys, page=2)]
    bounded = [x.id async for x in iter_letters(redis, wb.keys, page=2, upto=ends)]

    assert sorted(paged, key=lambda i: (i.partition, i.sort_key)) == paged
    assert set(paged) == set(first) | set(later) and len(paged) == 12
    assert bounded == first
