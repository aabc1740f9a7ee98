"""Unit tests for writebehind.sink.guards: version-guarded MongoDB write models."""

from __future__ import annotations

import datetime as dt
from typing import Any

import bson
import pytest
from bson import ObjectId
from pymongo import DeleteOne, UpdateOne

from writebehind.core.codec import ChangeRecord
from writebehind.core.version import Version
from writebehind.sink.guards import (
    Pending,
    guarded_write,
    newer_than_stored,
)

NOW = dt.datetime(2024, 6, 1, 12, 0, 0)
GRACE = dt.timedelta(days=7)


def pending(doc: dict[str, Any], version: str = "5-10", op: str = "set") -> Pending:
    record = ChangeRecord(version, Version.parse(version), op, "users", bson.encode(doc))  # type: ignore[arg-type]
    return Pending(record, doc)


def replace_with(op: UpdateOne) -> list[Any]:
    pipeline = op._doc
    assert isinstance(pipeline, list)
    assert len(pipeline) == 1
    assert list(pipeline[0]) == ["$replaceWith"]
    cond = pipeline[0]["$replaceWith"]["$cond"]
    assert isinstance(cond, list)
    assert len(cond) == 3
    return cond


# The expression's structure


@pytest.mark.parametrize("doc_id", [42, "k", ObjectId("0123456789abcdef01234567")])
def test_set_is_a_guarded_upsert(doc_id: Any) -> None:
    doc = {"_id": doc_id, "name": "Ada", "nested": {"a": [1, 2]}}
    op = guarded_write(pending(doc), now=NOW, tombstone_grace=GRACE)
    assert isinstance(op, UpdateOne)
    assert op._upsert is True
    assert op._filter == {"_id": doc_id}
    condition, then, otherwise = replace_with(op)
    assert condition == newer_than_stored(Version(5, 10))
    assert then == {"$literal": {**doc, "_wb": {"v": [5, 10]}}}
    assert otherwise == "$$ROOT"


def test_set_does_not_mutate_the_document() -> None:
    doc = {"_id": 1, "x": 1}
    guarded_write(pending(doc), now=NOW, tombstone_grace=GRACE)
    assert doc == {"_id": 1, "x": 1}


@pytest.mark.parametrize("value", ["$x", "$$ROOT", {"$set": 1}, ["$a", {"$literal": 1}]])
def test_user_values_stay_inside_literal(value: Any) -> None:
    doc = {"_id": 1, "field": value}
    op = guarded_write(pending(doc), now=NOW, tombstone_grace=GRACE)
    _, then, _ = replace_with(op)
    assert list(then) == ["$literal"]
    assert then["$literal"]["field"] == value


@pytest.mark.parametrize("hard_deletes", [False, None])
def test_delete_is_a_tombstone(hard_deletes: bool | None) -> None:
    doc = {"_id": "gone"}
    kwargs: dict[str, Any] = {} if hard_deletes is None else {"hard_deletes": hard_deletes}
    op = guarded_write(pending(doc, "7-3", op="del"), now=NOW, tombstone_grace=GRACE, **kwargs)
    assert isinstance(op, UpdateOne)
    assert op._upsert is True
    assert op._filter == {"_id": "gone"}
    condition, then, otherwise = replace_with(op)
    assert condition == newer_than_stored(Version(7, 3))
    assert then == {
        "$literal": {
            "_id": "gone",
            "_wb": {"v": [7, 3], "deleted": True, "purge_at": NOW + GRACE},
        }
    }
    assert otherwise == "$$ROOT"


def test_tombstone_drops_user_fields() -> None:
    # A del record's body normally carries only _id; even if it carried more, the
    # tombstone must not.
    doc = {"_id": 3, "secret": "x"}
    op = guarded_write(pending(doc, "1-1", op="del"), now=NOW, tombstone_grace=GRACE)
    _, then, _ = replace_with(op)
    assert set(then["$literal"]) == {"_id", "_wb"}


def test_hard_delete_is_a_guarded_delete_one() -> None:
    op = guarded_write(
        pending({"_id": 9}, "8-0", op="del"), now=NOW, tombstone_grace=GRACE, hard_deletes=True
    )
    assert isinstance(op, DeleteOne)
    assert op._filter == {"_id": 9, "$expr": newer_than_stored(Version(8, 0))}


def test_hard_deletes_do_not_change_sets() -> None:
    doc = {"_id": 1, "x": 1}
    soft = guarded_write(pending(doc), now=NOW, tombstone_grace=GRACE)
    hard = guarded_write(pending(doc), now=NOW, tombstone_grace=GRACE, hard_deletes=True)
    assert isinstance(hard, UpdateOne)
    assert hard == soft


# A tiny evaluator of the aggregation expressions the guards use. MongoDB compares
# arrays element by element, which is how Python compares lists.

_MISSING = object()


def evaluate(expr: Any, root: dict[str, Any]) -> Any:
    if isinstance(expr, str):
        if expr == "$$ROOT":
            return root
        if expr.startswith("$$"):
            raise NotImplementedError(expr)
        if expr.startswith("$"):
            value: Any = root
            for part in expr[1:].split("."):
                if not isinstance(value, dict) or part not in value:
                    return _MISSING
                value = value[part]
            return value
        return expr
    if isinstance(expr, list):
        return [evaluate(e, root) for e in expr]
    if isinstance(expr, dict):
        if len(expr) == 1:
            ((name, args),) = expr.items()
            if name == "$literal":
                return args
            if name == "$ifNull":
                value, default = (evaluate(a, root) for a in args)
                return default if value is _MISSING or value is None else value
            if name == "$lt":
                left, right = (evaluate(a, root) for a in args)
                assert isinstance(left, list)
                assert isinstance(right, list)
                return left < right
            if name == "$cond":
                condition, then, otherwise = args
                return evaluate(then if evaluate(condition, root) else otherwise, root)
            assert not name.startswith("$"), f"operator {name} not supported"
        return {k: evaluate(v, root) for k, v in expr.items()}
    return expr


def stored(pair: list[int] | None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": 1, **extra}
    if pair is not None:
        doc["_wb"] = {"v": pair}
    return doc


@pytest.mark.parametrize(
    ("stored_doc", "incoming", "newer"),
    [
        pytest.param(stored([5, 9]), Version(5, 10), True, id="5-10-beats-5-9"),
        pytest.param(stored([5, 10]), Version(5, 9), False, id="5-9-loses-to-5-10"),
        pytest.param(stored([5, 10]), Version(5, 10), False, id="equal-is-not-newer"),
        pytest.param(stored([4, 999]), Version(5, 0), True, id="ms-dominates"),
        pytest.param(stored([6, 0]), Version(5, 999), False, id="ms-dominates-older"),
        pytest.param(stored(None), Version(0, 0), True, id="missing-_wb-is-oldest"),
        pytest.param({"_id": 1, "_wb": {}}, Version(0, 0), True, id="missing-v-is-oldest"),
        pytest.param({"_id": 1, "_wb": {"v": None}}, Version(0, 0), True, id="null-v-is-oldest"),
        pytest.param(stored([2**63 - 2, 0]), Version(2**63 - 1, 0), True, id="large-ms"),
    ],
)
def test_newer_than_stored_semantics(
    stored_doc: dict[str, Any], incoming: Version, newer: bool
) -> None:
    assert evaluate(newer_than_stored(incoming), stored_doc) is newer


def test_evaluator_uses_numeric_not_text_order() -> None:
    # Guard against a regression to string versions: "5-10" < "5-9" as text.
    assert "5-10" < "5-9"
    assert evaluate(newer_than_stored(Version.parse("5-10")), stored([5, 9])) is True


@pytest.mark.parametrize(
    ("stored_pair", "incoming", "applied"),
    [
        ([5, 9], "5-10", True),
        ([5, 10], "5-10", False),
        ([5, 11], "5-10", False),
        (None, "1-0", True),
    ],
)
def test_replace_with_pipeline_semantics(
    stored_pair: list[int] | None, incoming: str, applied: bool
) -> None:
    current = stored(stored_pair, old="field")
    doc = {"_id": 1, "new": "$old"}
    op = guarded_write(pending(doc, incoming), now=NOW, tombstone_grace=GRACE)
    result = evaluate(op._doc[0]["$replaceWith"], current)
    if applied:
        v = Version.parse(incoming)
        assert result == {"_id": 1, "new": "$old", "_wb": {"v": [v.ms, v.seq]}}
    else:
        assert result is current


def test_tombstone_pipeline_semantics() -> None:
    current = stored([1, 0], name="Ada")
    op = guarded_write(pending({"_id": 1}, "2-0", op="del"), now=NOW, tombstone_grace=GRACE)
    result = evaluate(op._doc[0]["$replaceWith"], current)
    assert result == {"_id": 1, "_wb": {"v": [2, 0], "deleted": True, "purge_at": NOW + GRACE}}


def test_hard_delete_filter_semantics() -> None:
    op = guarded_write(
        pending({"_id": 1}, "5-10", op="del"), now=NOW, tombstone_grace=GRACE, hard_deletes=True
    )
    expr = op._filter["$expr"]
    assert evaluate(expr, stored([5, 9])) is True
    assert evaluate(expr, stored([5, 10])) is False
    assert evaluate(expr, stored(None)) is True
