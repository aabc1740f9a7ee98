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


class Failure(enum.Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    SPLIT = "split"
    """A client-side error that names no operation: retry halves to find it."""


# Server error codes that describe the server's state, not the document.
TRANSIENT_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        13,  # Unauthorized: an operator fixes roles; records must not be lost meanwhile
        18,  # AuthenticationFailed
        24,  # LockTimeout
        46,  # LockBusy
        50,  # MaxTimeMSExpired
        64,  # WriteConcernFailed
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        112,  # WriteConflict
        133,  # FailedToSatisfyReadPreference
        189,  # PrimarySteppedDown
        202,  # NetworkInterfaceExceededTimeLimit
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11601,  # Interrupted
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
        14031,  # OutOfDiskSpace
        16500,  # request rate too large (Cosmos DB)
    }
)
TRANSIENT_LABELS = frozenset({"RetryableWriteError", "TransientTransactionError"})
DUPLICATE_KEY = 11000


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


def _is_id_duplicate(error: Mapping[str, Any]) -> bool:
    pattern = error.get("keyPattern")
    if isinstance(pattern, Mapping):
        return list(pattern) == ["_id"]
    return " index: _id_ " in str(error.get("errmsg", ""))


def classify_write_error(error: Mapping[str, Any]) -> ErrorInfo:
    """Classify one entry of ``BulkWriteError.details["writeErrors"]``."""
    code = error.get("code")
    message = str(error.get("errmsg", ""))
    if code == DUPLICATE_KEY:
        # On _id it is two upserts racing to insert the same new document:
        # the retry finds it and applies the version guard. On any other
        # unique index the document itself collides: poison.
        kind = Failure.TRANSIENT if _is_id_duplicate(error) else Failure.PERMANENT
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


def is_transient(exc: BaseException) -> bool:
    """A MongoDB failure of the network or the server's state, not of the call: worth waiting out.

    Connection loss, server selection and pool timeouts, write-concern errors,
    operation timeouts, the ``RetryableWriteError`` and ``TransientTransactionError``
    labels, and the server codes in ``TRANSIENT_CODES``. Anything else (a bug,
    a refused write) is not: a tool that retried it would hide it for minutes.
    Unlike ``classify_exception``, which the worker uses to decide whether a
    record may be dead-lettered, an unknown exception is *not* transient here.
    """
    if isinstance(exc, pm.ConnectionFailure | pm.WriteConcernError | pm.ExecutionTimeout):
        return True
    if not isinstance(exc, pm.PyMongoError):
        return False
    if exc.timeout or any(exc.has_error_label(label) for label in TRANSIENT_LABELS):
        return True
    return isinstance(exc, pm.OperationFailure) and exc.code in TRANSIENT_CODES
