"""Unit tests for writebehind.sink.classify: which MongoDB failures are retried."""

from __future__ import annotations

from typing import Any

import pytest
from bson.errors import InvalidBSON, InvalidDocument
from pymongo import errors as pm

from writebehind.sink.classify import (
    TRANSIENT_CODES,
    ErrorInfo,
    Failure,
    classify_code,
    classify_exception,
    classify_write_error,
    is_transient,
)

T, P, S = Failure.TRANSIENT, Failure.PERMANENT, Failure.SPLIT


@pytest.mark.parametrize(
    ("code", "labels", "expected"),
    [
        (91, (), T),  # ShutdownInProgress
        (189, (), T),  # PrimarySteppedDown
        (10107, (), T),  # NotWritablePrimary
        (11602, (), T),  # InterruptedDueToReplStateChange
        (112, (), T),  # WriteConflict
        (50, (), T),  # MaxTimeMSExpired
        (13, (), T),  # Unauthorized
        (16500, (), T),  # Cosmos DB throttling
        (121, (), P),  # DocumentValidationFailure
        (2, (), P),  # BadValue
        (11000, (), P),  # duplicate key, without context
        (None, (), P),
        (2, ["RetryableWriteError"], T),
        (2, ["TransientTransactionError"], T),
        (None, ["RetryableWriteError"], T),
        (121, ["SomeOtherLabel"], P),
        (121, ["NoWritesPerformed"], P),
    ],
)
def test_classify_code(code: int | None, labels: list[str], expected: Failure) -> None:
    assert classify_code(code, labels) is expected


def test_classify_code_every_transient_code() -> None:
    assert all(classify_code(code) is T for code in TRANSIENT_CODES)


def test_classify_code_accepts_a_generator_of_labels() -> None:
    assert classify_code(2, (label for label in ["RetryableWriteError"])) is T


DUP_EMAIL_MSG = (
    "E11000 duplicate key error collection: db.users index: email_1 dup key: "
    '{ email: "a@example.com" }'
)
DUP_ID_MSG = "E11000 duplicate key error collection: db.users index: _id_ dup key: { _id: 7 }"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            {"index": 0, "code": 11000, "keyPattern": {"email": 1}, "errmsg": DUP_EMAIL_MSG},
            P,
            id="dup-secondary-unique-index",
        ),
        pytest.param({"index": 0, "code": 11000, "errmsg": DUP_EMAIL_MSG}, P, id="dup-email-msg"),
        pytest.param(
            {"index": 0, "code": 11000, "keyPattern": {"_id": 1}, "errmsg": DUP_ID_MSG},
            T,
            id="dup-id-keypattern",
        ),
        pytest.param(
            {"index": 0, "code": 11000, "keyPattern": {"_id": 1}, "errmsg": ""},
            T,
            id="dup-id-keypattern-no-msg",
        ),
        pytest.param({"index": 0, "code": 11000, "errmsg": DUP_ID_MSG}, T, id="dup-id-errmsg"),
        pytest.param(
            {"index": 0, "code": 11000, "keyPattern": {"_id": 1, "email": 1}, "errmsg": ""},
            P,
            id="dup-compound-index-starting-with-id",
        ),
        pytest.param(
            # The keyPattern wins over a misleading message.
            {"index": 0, "code": 11000, "keyPattern": {"email": 1}, "errmsg": DUP_ID_MSG},
            P,
            id="dup-keypattern-beats-errmsg",
        ),
        pytest.param(
            {"index": 0, "code": 11000, "errmsg": "E11000 index: _id_2 dup key"},
            P,
            id="dup-index-named-like-id",
        ),
        pytest.param({"index": 0, "code": 11000}, P, id="dup-no-context"),
        pytest.param(
            {"index": 0, "code": 121, "errmsg": "Document failed validation"},
            P,
            id="validation",
        ),
        pytest.param(
            {"index": 0, "code": 2, "errmsg": "x", "errorLabels": ["RetryableWriteError"]},
            T,
            id="retryable-label",
        ),
        pytest.param(
            {"index": 0, "code": 2, "errmsg": "x", "errorLabels": None}, P, id="labels-none"
        ),
        pytest.param({"index": 0, "code": 91, "errmsg": "shutting down"}, T, id="91"),
        pytest.param({"index": 0, "code": 10107, "errmsg": "not primary"}, T, id="10107"),
        pytest.param({"index": 0, "code": 189, "errmsg": "stepped down"}, T, id="189"),
        pytest.param({"index": 0, "code": 11602, "errmsg": "repl state"}, T, id="11602"),
    ],
)
def test_classify_write_error(error: dict[str, Any], expected: Failure) -> None:
    info = classify_write_error(error)
    assert isinstance(info, ErrorInfo)
    assert info.kind is expected
    assert info.code == error.get("code")
    assert info.message == error.get("errmsg", "")


def test_classify_write_error_carries_code_and_message() -> None:
    info = classify_write_error({"index": 3, "code": 121, "errmsg": "Document failed validation"})
    assert info == ErrorInfo(P, 121, "Document failed validation")


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        pytest.param(InvalidDocument("cannot encode object"), S, None, id="InvalidDocument"),
        pytest.param(pm.DocumentTooLarge("too large"), S, None, id="DocumentTooLarge"),
        pytest.param(OverflowError("int too big"), S, None, id="OverflowError"),
        pytest.param(InvalidBSON("bad bson"), S, None, id="InvalidBSON"),
        pytest.param(pm.AutoReconnect("connection reset"), T, None, id="AutoReconnect"),
        pytest.param(pm.NetworkTimeout("timed out"), T, None, id="NetworkTimeout"),
        pytest.param(
            pm.ServerSelectionTimeoutError("no servers"), T, None, id="ServerSelectionTimeout"
        ),
        pytest.param(pm.NotPrimaryError("not primary", {"code": 10107}), T, None, id="NotPrimary"),
        pytest.param(pm.ConnectionFailure("refused"), T, None, id="ConnectionFailure"),
        pytest.param(
            pm.WriteConcernError("wc failed", code=100, details={"code": 100}),
            T,
            100,
            id="WriteConcernError",
        ),
        pytest.param(
            pm.WTimeoutError("wtimeout", code=64, details={"code": 64}), T, 64, id="WTimeoutError"
        ),
        pytest.param(
            # 262 is transient anyway; use a code that is not, to see the type decide.
            pm.ExecutionTimeout("timed out", code=2),
            T,
            2,
            id="ExecutionTimeout",
        ),
        pytest.param(
            pm.OperationFailure("Document failed validation", code=121, details={"code": 121}),
            P,
            121,
            id="OperationFailure-121",
        ),
        pytest.param(
            pm.OperationFailure(
                "bad value", code=2, details={"code": 2, "errorLabels": ["RetryableWriteError"]}
            ),
            T,
            2,
            id="OperationFailure-2-retryable",
        ),
        pytest.param(
            pm.OperationFailure("bad value", code=2, details={"code": 2}),
            P,
            2,
            id="OperationFailure-2",
        ),
        pytest.param(
            pm.OperationFailure("stepped down", code=189), T, 189, id="OperationFailure-189"
        ),
        pytest.param(pm.InvalidName("collection names cannot be empty"), P, None, id="InvalidName"),
        pytest.param(RuntimeError("something unexpected"), T, None, id="RuntimeError"),
    ],
)
def test_classify_exception(exc: BaseException, expected: Failure, code: int | None) -> None:
    info = classify_exception(exc)
    assert info.kind is expected
    assert info.code == code
    assert info.message == str(exc)


def test_classify_exception_message_falls_back_to_type_name() -> None:
    info = classify_exception(RuntimeError())
    assert info == ErrorInfo(T, None, "RuntimeError")


def test_classify_exception_ignores_non_int_code_attribute() -> None:
    class Odd(Exception):
        code = "E42"

    assert classify_exception(Odd("odd")) == ErrorInfo(T, None, "odd")


# is_transient: what a tool (replay, re-drive) may wait out, and what it must not hide


@pytest.mark.parametrize(
    "exc",
    [
        pm.AutoReconnect("connection reset"),
        pm.NetworkTimeout("timed out"),
        pm.ServerSelectionTimeoutError("no primary"),
        pm.WriteConcernError("waiting for replication timed out", 64),
        pm.ExecutionTimeout("operation exceeded time limit", 50),
        pm.OperationFailure("not primary", 10107),
        pm.OperationFailure("shutting down", 91),
    ],
    ids=lambda e: type(e).__name__,
)
def test_server_and_network_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


def test_a_retryable_write_label_is_transient() -> None:
    exc = pm.OperationFailure("whatever", 999_999, {"errorLabels": ["RetryableWriteError"]})
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        pm.OperationFailure("Document failed validation", 121),
        pm.InvalidName("bad collection"),
        TypeError("unhashable type: 'dict'"),
        KeyError("_id"),
        RuntimeError("a bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_bugs_and_refusals_are_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)
    # The worker's classification stays as it was: it never dead-letters for an
    # unknown exception, whereas a tool must not retry one for minutes.
    if not isinstance(exc, pm.PyMongoError):
        assert classify_exception(exc).kind is Failure.TRANSIENT
