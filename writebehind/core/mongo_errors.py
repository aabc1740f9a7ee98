"""Which MongoDB failures are worth waiting out (no IO), for the SDK and the worker alike.

The server codes and labels that describe the server's state rather than the
request, shared by the worker's classification (``sink/classify.py``, which
decides what may be dead-lettered) and the SDK's write-through retries
(``sdk/reading/write_through.py``), so that the two never drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import errors as pm

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


def is_id_duplicate(error: Mapping[str, Any]) -> bool:
    """A duplicate-key write error on ``_id`` (two upserts racing to insert one document)."""
    pattern = error.get("keyPattern")
    if isinstance(pattern, Mapping):
        return list(pattern) == ["_id"]
    return " index: _id_ " in str(error.get("errmsg", ""))


def write_error_is_transient(error: Mapping[str, Any]) -> bool:
    """Whether one entry of ``BulkWriteError.details["writeErrors"]`` is worth retrying:
    a code or label of ``TRANSIENT_CODES``/``TRANSIENT_LABELS``, or a duplicate on ``_id``
    (the retry finds the document and applies the version guard)."""
    code = error.get("code")
    if code == DUPLICATE_KEY:
        return is_id_duplicate(error)
    labels = error.get("errorLabels") or ()
    return bool(TRANSIENT_LABELS.intersection(labels)) or code in TRANSIENT_CODES


def bulk_write_is_transient(exc: BaseException) -> bool:
    """Whether a failed ``bulk_write`` is worth sending again as a whole (its models are
    version-guarded, so applying any of them twice changes nothing): ``is_transient``,
    or a ``BulkWriteError`` whose every write error is transient (write-concern errors
    alone included). One refused model makes it permanent: a retry would be refused again.
    """
    if isinstance(exc, pm.BulkWriteError):
        errors = (exc.details or {}).get("writeErrors") or []
        return all(write_error_is_transient(error) for error in errors)
    return is_transient(exc)


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
