"""Deciding whether a failed MongoDB write is worth retrying (no IO).

Transient failures are waited out for as long as they last; permanent ones
send that one record to the dead-letter stream. When in doubt between the two
for a server-wide condition (auth, disk full), we choose transient: a stalled
worker wakes someone up, a dead-lettered stream of good records loses nothing
but needs a re-drive. Client-side encoding errors abort a whole ``bulk_write``
before it is sent, so the batch is split to find the offending record.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bson.errors import InvalidBSON, InvalidDocument
from pymongo import errors as pm

from writebehind.core.mongo_errors import (
    DUPLICATE_KEY,
    TRANSIENT_CODES,
    TRANSIENT_LABELS,
    is_id_duplicate,
    is_transient,
)

__all__ = [
    "DUPLICATE_KEY",
    "TRANSIENT_CODES",
    "TRANSIENT_LABELS",
    "ErrorInfo",
    "Failure",
    "classify_code",
    "classify_exception",
    "classify_write_error",
    "is_transient",
]


class Failure(enum.Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    SPLIT = "split"
    """A client-side error that names no operation: retry halves to find it."""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A classified failure, with what a dead letter records about it."""

    kind: Failure
    code: int | None
    message: str


def classify_code(code: int | None, labels: Iterable[str] = ()) -> Failure:
    if TRANSIENT_LABELS.intersection(labels) or code in TRANSIENT_CODES:
        return Failure.TRANSIENT
    return Failure.PERMANENT


def classify_write_error(error: Mapping[str, Any]) -> ErrorInfo:
    """Classify one entry of ``BulkWriteError.details["writeErrors"]``."""
    code = error.get("code")
    message = str(error.get("errmsg", ""))
    if code == DUPLICATE_KEY:
        # On _id it is two upserts racing to insert the same new document:
        # the retry finds it and applies the version guard. On any other
        # unique index the document itself collides: poison.
        kind = Failure.TRANSIENT if is_id_duplicate(error) else Failure.PERMANENT
        return ErrorInfo(kind, code, message)
    labels = error.get("errorLabels") or ()
    return ErrorInfo(classify_code(code, labels), code, message)


def classify_exception(exc: BaseException) -> ErrorInfo:
    """Classify an exception that failed a whole ``bulk_write`` (not a BulkWriteError)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, InvalidDocument | pm.DocumentTooLarge | OverflowError | InvalidBSON):
        return ErrorInfo(Failure.SPLIT, None, message)
    if isinstance(exc, pm.InvalidName):
        # A collection name the driver refuses: every record for it fails alike.
        return ErrorInfo(Failure.PERMANENT, None, message)
    if isinstance(exc, pm.OperationFailure) and not isinstance(
        exc, pm.WriteConcernError | pm.ExecutionTimeout | pm.WTimeoutError
    ):
        labels = [label for label in TRANSIENT_LABELS if exc.has_error_label(label)]
        return ErrorInfo(classify_code(exc.code, labels), exc.code, message)
    # Connection loss, timeouts, server selection, write-concern trouble, and
    # anything unexpected: retry. A record is never dead-lettered for a
    # failure that says nothing about the record.
    code = getattr(exc, "code", None)
    return ErrorInfo(Failure.TRANSIENT, code if isinstance(code, int) else None, message)
