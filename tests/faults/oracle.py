"""The oracle: every SDK call a trial made, and the invariants checked once the system is quiet.

Each call is recorded as acknowledged (with the ``Version`` it returned), failed
(with the error that refused it: nothing was written) or unknown (cancelled or
timed out: it may or may not have been written). After the trial heals and the
workers go quiet, ``Oracle.check`` compares MongoDB, the consumer group and
the dead-letter streams with the record, and raises an ``AssertionError``
naming the seed, the trial type and the invariant broken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from bson import decode as bson_decode
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core.errors import (
    BacklogFull,
    CacheUnavailable,
    InvalidInput,
    NotReplicated,
    RedisOutOfMemory,
    TooManyConflicts,
)
from writebehind.core.keys import KeySpace
from writebehind.core.version import Version

GROUP = "writebehind"
COLLECTION = "docs"

LOST = "lost write"
STALE = "stale overwrite"
RESURRECTION = "resurrection"
DEAD_LETTER = "dead-letter mismatch"
CONTENT = "content mismatch"
PENDING = "left pending"
REPLY = "reply mismatch"
UNREPORTED = "loss not reported"

# Errors that mean "refused, nothing written".
REFUSED = (RedisOutOfMemory, BacklogFull, TooManyConflicts, InvalidInput)
# Errors after which the write may or may not have been made.
# NotReplicated: made on the primary, not confirmed on a replica: it may not survive a failover.
UNCERTAIN = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError, NotReplicated)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Call:
    op: str
    """``set``, ``patch``, ``modify`` or ``delete``."""
    doc_id: str
    content: dict[str, Any] | None
    """The user fields written (None for a delete); for ``patch`` only the patched fields."""
    poison: bool = False
    outcome: str = "pending"
    version: Version | None = None
    error: str | None = None

    @property
    def partial(self) -> bool:
        return self.op == "patch"


@dataclass
class Violation:
    invariant: str
    detail: str


@dataclass
class Oracle:
    seed: int
    trial: str
    keys: KeySpace
    calls: list[Call] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    history: dict[str, tuple[Version, bool]] = field(default_factory=dict)
    """Per document, the newest (version, is tombstone) the monitor saw in MongoDB."""
    injected: dict[str, str] = field(default_factory=dict)
    """Records added to a stream past the SDK, by entry id: each must be dead-lettered once."""

    def fail(self, invariant: str, detail: str) -> None:
        self.violations.append(Violation(invariant, detail))

    def prefix(self) -> str:
        return f"seed={self.seed} trial={self.trial}"

    # -- recording -------------------------------------------------------------

    async def run(
        self,
        call: Call,
        make: Callable[[], Awaitable[Version]],
        *,
        deadline: float | None = None,
    ) -> None:
        """Make one SDK call and record its outcome; cancellation at ``deadline`` is unknown."""
        self.calls.append(call)
        try:
            with anyio.move_on_after(deadline if deadline is not None else float("inf")) as scope:
                version = await make()
            if scope.cancelled_caught:
                call.outcome = "unknown"
                call.error = "cancelled"
                return
        except CacheUnavailable as exc:  # sent nothing (breaker open), or no answer in time
            call.outcome = "failed" if exc.written is False else "unknown"
            call.error = f"{type(exc).__name__}: {exc}"
            return
        except REFUSED as exc:
            call.outcome, call.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        except UNCERTAIN as exc:
            call.outcome, call.error = "unknown", f"{type(exc).__name__}: {exc}"
            return
        call.outcome, call.version = "ack", version
        # Every reply that arrived must be the reply to this request.
        if (
            version.collection != COLLECTION
            or version.doc_id != call.doc_id
            or version.deleted != (call.op == "delete")
        ):
            self.fail(
                REPLY,
                f"{call.op} {call.doc_id!r} got a reply for {version.collection}/"
                f"{version.doc_id!r} deleted={version.deleted}",
            )

    # -- watching MongoDB during the trial -------------------------------------

    async def observe(self, db: Any) -> None:
        """One look at MongoDB: a document's stored version must never go back."""
        async for doc in db[COLLECTION].find({}, {"_wb": 1}):
            wb = doc.get("_wb")
            if not isinstance(wb, dict) or "v" not in wb:
                continue
            doc_id = doc["_id"]
            version = Version.from_pair(wb["v"])
            tomb = bool(wb.get("deleted"))
            seen = self.history.get(doc_id)
            if seen is not None and version < seen[0]:
                kind = RESURRECTION if seen[1] and not tomb else STALE
                self.fail(kind, f"{doc_id!r}: MongoDB went from {seen[0]} back to {version}")
            if seen is None or version >= seen[0]:
                self.history[doc_id] = (version, tomb)

    async def monitor(self, db: Any, interval: float = 0.05) -> None:
        """Observe until cancelled; MongoDB being down is part of some trials."""
        while True:
            try:
                with anyio.fail_after(2):
                    await self.observe(db)
            except Exception:  # the server may be down right now
                pass
            await anyio.sleep(interval)

    # -- figures ---------------------------------------------------------------

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.calls if c.outcome == outcome)

    def figures(self) -> dict[str, Any]:
        by = {v.invariant for v in self.violations}
        return {
            "type": self.trial,
            "seed": self.seed,
            "acknowledged": self.count("ack"),
            "unknown": self.count("unknown"),
            "failed": self.count("failed"),
            "lost": sum(1 for v in self.violations if v.invariant == LOST),
            "stale_overwrites": sum(1 for v in self.violations if v.invariant == STALE),
            "resurrections": sum(1 for v in self.violations if v.invariant == RESURRECTION),
            "violations": sorted(by),
        }

    def raise_if_failed(self) -> None:
        if self.violations:
            lines = [f"{self.prefix()}: {v.invariant}: {v.detail}" for v in self.violations[:20]]
            more = len(self.violations) - 20
            if more > 0:
                lines.append(f"... and {more} more")
            raise AssertionError("\n".join(lines))

    # -- the checks once quiet -------------------------------------------------

    async def group_quiet(self, redis: Redis) -> list[str]:
        """Partitions with pending entries or lag (XINFO GROUPS), as descriptions."""
        busy = []
        for p, stream in enumerate(self.keys.streams()):
            if not await redis.exists(stream):
                continue
            for g in await redis.xinfo_groups(stream):
                if _text(g["name"]) != GROUP:
                    continue
                pending, lag = int(g["pending"]), g.get("lag")
                if pending or lag is None or int(lag):
                    busy.append(f"partition {p}: pending={pending} lag={lag}")
        return busy

    async def dead_letters(self, redis: Redis) -> list[tuple[str, Any, str, str]]:
        """Each letter as (collection, document id or None, original version, source entry id)."""
        found = []
        for p in range(self.keys.partitions):
            entries: Any = await redis.xrange(self.keys.dead_letters(p))
            for _, fields in entries:
                f = {_text(k): v for k, v in fields.items()}
                try:
                    doc_id = bson_decode(bytes(f["d"])).get("_id")
                except Exception:  # an injected malformed body
                    doc_id = None
                source = _text(f.get("source_id", b""))
                found.append((_text(f.get("c", b"")), doc_id, _text(f.get("ov", b"")), source))
        return found

    async def verify(self, redis: Redis, db: Any, *, check_dead_letters: bool = True) -> None:
        """Record every violation of the invariants in the present state."""
        busy = await self.group_quiet(redis)
        for b in busy:
            self.fail(PENDING, b)
        stored = {d["_id"]: d async for d in db[COLLECTION].find({})}
        await self.observe(db)
        per_doc: dict[str, list[Call]] = {}
        for c in self.calls:
            per_doc.setdefault(c.doc_id, []).append(c)
        for doc_id, calls in per_doc.items():
            self._verify_doc(doc_id, calls, stored.get(doc_id))
        for doc_id in stored:
            if doc_id not in per_doc and doc_id != "anchor":
                self.fail(CONTENT, f"{doc_id!r} is in MongoDB but no call wrote it")
        if check_dead_letters:
            await self._verify_dead_letters(redis)

    def _verify_doc(self, doc_id: str, calls: list[Call], doc: dict[str, Any] | None) -> None:
        poison = any(c.poison for c in calls)
        acked = sorted(
            (c for c in calls if c.outcome == "ack" and not c.poison),
            key=lambda c: c.version or Version(0, 0),
        )
        unknown = [c for c in calls if c.outcome == "unknown"]
        if poison:
            if doc is not None:
                self.fail(DEAD_LETTER, f"poison {doc_id!r} reached MongoDB: {doc}")
            return
        if doc is None:
            if acked and acked[-1].op != "delete":
                self.fail(LOST, f"{doc_id!r}: newest acked {acked[-1].version} not in MongoDB")
            return
        version = Version.from_pair(doc["_wb"]["v"])
        tomb = bool(doc["_wb"].get("deleted"))
        user = {k: v for k, v in doc.items() if k not in ("_id", "_wb")}
        if not acked:
            if not unknown:
                self.fail(CONTENT, f"{doc_id!r} in MongoDB at {version}, but no write was made")
            else:
                self._match_unknown(doc_id, version, tomb, user, unknown)
            return
        newest = acked[-1]
        assert newest.version is not None
        if version < newest.version:
            kind = RESURRECTION if newest.op == "delete" and not tomb else LOST
            self.fail(kind, f"{doc_id!r}: MongoDB at {version}, newest acked {newest.version}")
        elif version > newest.version:
            if not unknown:
                self.fail(CONTENT, f"{doc_id!r}: MongoDB at {version}, newer than any write made")
            else:
                self._match_unknown(doc_id, version, tomb, user, unknown)
        else:
            self._match(doc_id, newest, tomb, user)

    def _match(self, doc_id: str, call: Call, tomb: bool, user: dict[str, Any]) -> bool:
        if call.op == "delete":
            if not tomb or user:
                self.fail(RESURRECTION, f"{doc_id!r}: deleted at {call.version}, stored {user}")
                return False
            return True
        expected = call.content or {}
        if tomb:
            self.fail(CONTENT, f"{doc_id!r}: tombstone at {call.version}, a {call.op} was made")
            return False
        got = {k: user.get(k) for k in expected} if call.partial else user
        if got != expected:
            self.fail(CONTENT, f"{doc_id!r} at {call.version}: wrote {expected!r}, stored {user!r}")
            return False
        return True

    def _match_unknown(
        self, doc_id: str, version: Version, tomb: bool, user: dict[str, Any], unknown: list[Call]
    ) -> None:
        for c in unknown:
            if c.op == "delete" and tomb and not user:
                return
            if c.op != "delete" and not tomb:
                expected = c.content or {}
                got = {k: user.get(k) for k in expected} if c.partial else user
                if got == expected:
                    return
        self.fail(CONTENT, f"{doc_id!r} at {version} matches none of its unknown writes: {user!r}")

    async def _verify_dead_letters(self, redis: Redis) -> None:
        letters = await self.dead_letters(redis)
        rogue = [source for *_, source in letters if source in self.injected]
        found = [letter[:3] for letter in letters if letter[3] not in self.injected]
        poison = [c for c in self.calls if c.poison]
        expected = {(COLLECTION, c.doc_id, str(c.version)) for c in poison if c.outcome == "ack"}
        maybe = {c.doc_id for c in self.calls if c.poison and c.outcome == "unknown"}
        self.dead_letters_expected = len(expected) + len(self.injected)
        self.dead_letters_found = len(letters)
        got = set(found)
        if len(found) != len(got) or len(rogue) != len(set(rogue)):
            twice = len(found) - len(got) + len(rogue) - len(set(rogue))
            self.fail(DEAD_LETTER, f"{twice} records dead-lettered twice")
        for item in sorted(expected - got, key=str):
            self.fail(DEAD_LETTER, f"poison {item} was acknowledged but is not dead-lettered")
        for item in sorted(got - expected, key=str):
            if item[1] not in maybe:
                self.fail(DEAD_LETTER, f"{item} dead-lettered but was not poison")
        for source in sorted(set(self.injected) - set(rogue)):
            self.fail(DEAD_LETTER, f"injected {self.injected[source]} {source} not dead-lettered")

    dead_letters_expected: int = 0
    dead_letters_found: int = 0
