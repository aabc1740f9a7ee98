"""How a command fails: one line on stderr and a documented exit status, never a traceback.

Exit statuses, the same for every command:

====  =====================================================================
0     done
1     a failure waiting cannot fix (or a bug: the line says so)
2     bad usage or configuration: the line names the flag and the variable
3     ``replay``: SINCE is older than the retained history (nothing written)
4     ``replay`` / ``dlq replay``: done, but some records are dead letters
5     a server stayed unreachable (``--timeout`` passed); safe to run again
130   interrupted (Ctrl-C)
====  =====================================================================

``explain`` is pure: it maps an exception to that line and status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import click
from pymongo.errors import PyMongoError
from redis.exceptions import AskError, MovedError, RedisClusterException, RedisError

from writebehind.core.errors import ConfigurationError, WriteBehindError
from writebehind.core.replies import is_not_a_cluster
from writebehind.observability.logs import redact_url
from writebehind.settings import named

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_HISTORY_GAP = 3
"""``replay``: SINCE is older than the retained history and --allow-gap was not given;
nothing was written."""
EXIT_DEAD_LETTERS = 4
"""``replay``: it finished, but MongoDB refused some records for good; each has a dead
letter (written now, or already there from the worker or an earlier replay).
``dlq replay``: some letters were refused again and stay."""
EXIT_UNAVAILABLE = 5
EXIT_INTERRUPTED = 130

SERVERS: dict[str, str] = {}
"""Redacted URLs of the servers the running command uses, to name them in errors."""


class UsageProblem(click.ClickException):
    """A bad option or argument: one ``Error: ...`` line and exit status 2 (no usage block)."""

    exit_code = EXIT_USAGE


class Unavailable(click.ClickException):
    """A server stayed unreachable for the time the command was given: exit status 5."""

    exit_code = EXIT_UNAVAILABLE


def scrub(message: str, url: str) -> str:
    """``message`` with ``url`` (and its password) replaced by the redacted URL."""
    if not url:
        return message
    safe = redact_url(url)
    message = message.replace(url, safe)
    password = re.search(r"://[^:/@]*:([^@/]+)@", url)
    if password:
        message = message.replace(password.group(1), "***")
    return message


def mongo_reason(exc: BaseException) -> str:
    """``<type>: <message>``, without the topology dump PyMongo appends to a server
    selection timeout (the cause comes before it)."""
    text = " ".join(str(exc).split()).split(", Timeout:")[0]
    return f"{type(exc).__name__}: {text[:300]}"


def cluster_hint(exc: BaseException) -> str:
    """What to change when ``--redis-cluster`` does not match the server it names."""
    if is_not_a_cluster(exc):
        return f" (this Redis is no cluster node: leave out {named('redis_cluster')})"
    if isinstance(exc, MovedError | AskError):
        return f" (this Redis is a cluster node: give {named('redis_cluster')})"
    return ""


@dataclass(frozen=True, slots=True)
class Explained:
    line: str
    code: int


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def explain(exc: BaseException) -> Explained:
    """The line and exit status for an exception that escaped a command."""
    leaves = _leaves(exc)
    # A task group reports the cause together with the cancellations it caused.
    meaningful = [e for e in leaves if not isinstance(e, KeyboardInterrupt | SystemExit)] or leaves
    first = meaningful[0]
    if isinstance(first, KeyboardInterrupt):
        return Explained("interrupted", EXIT_INTERRUPTED)
    if isinstance(first, click.ClickException):
        return Explained(_one_line(first.format_message()), first.exit_code)
    if isinstance(first, ConfigurationError):
        # Options are checked before connecting (UsageProblem, status 2); one that
        # surfaces here was found on the servers: another partition count, say.
        return Explained(_one_line(str(first)), EXIT_FAILURE)
    if isinstance(first, RedisError | RedisClusterException):
        # RedisClusterException (no node answers, a node not in cluster mode) is no RedisError.
        where = SERVERS.get("redis", "Redis")
        line = f"Redis ({where}): {type(first).__name__}: {first}{cluster_hint(first)}"
        return Explained(_one_line(line), EXIT_FAILURE)
    if isinstance(first, PyMongoError):
        where = SERVERS.get("mongodb", "MongoDB")
        return Explained(_one_line(f"MongoDB ({where}): {mongo_reason(first)}"), EXIT_FAILURE)
    if isinstance(first, WriteBehindError | OSError):
        return Explained(_one_line(f"{type(first).__name__}: {first}"), EXIT_FAILURE)
    return Explained(
        _one_line(
            f"internal error: {type(first).__name__}: {first} "
            "(a bug: please report it; WRITEBEHIND_TRACEBACK=1 shows the traceback)"
        ),
        EXIT_FAILURE,
    )
