"""The change feed: follows the partition streams with ``XREAD`` and evicts near caches.

A thin IO adapter around ``records``, ``store`` and ``staleness``. It reads
every partition's change stream and invalidation stream from the last id it
applied (a plain reader, not a consumer of the workers' group: it acks
nothing and holds nothing pending). After a lost connection it resumes from
those ids, unless Redis has trimmed records it had not read yet: then it
empties the near caches instead. Trimming drops the oldest records only, so
that is known from ``XINFO STREAM`` (Redis 7.0+): when the first record left
is past our position, the records added after our position
(``entries-added`` less those we read) must all still be there. Its
connection is its own and named ``wb-near-feed`` (``CLIENT LIST``), since a
blocking ``XREAD`` holds a connection.

On a Redis Cluster one ``Follower`` follows one partition (its two streams
share the partition's hash slot, so one ``XREAD`` may read both), on a
client shared by the partitions (sdk/near/cluster_feed.py), and it also
watches which master serves the slot: when that changes (a failover), the
new master may lack records the old one had sent to this feed, or issue ids
below its position, so it empties the near caches and starts from the new
master's heads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core.backoff import Backoff
from writebehind.core.keys import KeySpace
from writebehind.core.replies import as_text, is_torn_connection
from writebehind.core.version import ZERO, Version
from writebehind.sdk.metrics import SDK_NEAR_FEED_CONNECTED, SDK_NEAR_FEED_LAG, SDK_NEAR_RESYNCS
from writebehind.sdk.near.outage import OutageLog
from writebehind.sdk.near.records import Eviction, from_change, from_invalidation
from writebehind.sdk.near.staleness import FeedClock

log = logging.getLogger("writebehind.near")

FEED_CLIENT_NAME = "wb-near-feed"
BATCH = 500
"""Records read per stream per XREAD; a stream that returns this many is behind."""

_LOST = (RedisConnectionError, RedisTimeoutError, OSError)


def feed_options(kwargs: Mapping[str, Any], block_s: float) -> dict[str, Any]:
    """What a feed client (single server or cluster) sets over the application client's
    connection ``kwargs``: its name, bytes replies, no transparent retries (a lost
    connection must reach the follower, which checks on reconnecting whether Redis
    trimmed records the feed had not read yet), and a socket timeout past ``block_s``
    (a blocked ``XREAD`` answers within its BLOCK; a server that does not is lost)."""
    return {
        "client_name": FEED_CLIENT_NAME,
        "decode_responses": False,
        "retry": Retry(NoBackoff(), 0),
        "socket_timeout": block_s + max(1.0, float(kwargs.get("socket_timeout") or 0)),
    }


def feed_client(redis: Redis, block_s: float) -> Redis:
    """A client like ``redis`` (same server, credentials, TLS), one named connection."""
    pool = redis.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(feed_options(kwargs, block_s))
    own = ConnectionPool(connection_class=pool.connection_class, max_connections=2, **kwargs)
    return Redis(connection_pool=own)


class Follower:
    """Reads the feed until closed; ``apply`` gets every record, ``resync`` every reconnection."""

    def __init__(
        self,
        redis: Redis,
        keys: KeySpace,
        clock: FeedClock,
        block_ms: Callable[[], int],
        apply: Callable[[Eviction], None],
        empty: Callable[[], None],
        positioned: Callable[[], None],
        *,
        partitions: Sequence[int] | None = None,
        shared: Redis | None = None,
        owner: Callable[[], str] | None = None,
        lost: tuple[type[BaseException], ...] = _LOST,
        connected: Callable[[bool], None] = lambda up: SDK_NEAR_FEED_CONNECTED.set(int(up)),
        outage: OutageLog | None = None,
    ) -> None:
        """``partitions``: the ones to follow (default all); ``shared``: a client to
        read with (not closed here; default a ``feed_client`` per connection);
        ``owner``: which server serves those partitions now (a cluster's slot
        master), checked after every read; ``lost``: errors that mean the
        connection was lost (resumed from, not raised); ``connected``: told when
        the feed (re)connects (``True``) and loses its connection (``False``);
        ``outage``: where lost connections are logged (shared by a cluster's
        followers, so that an outage is one line and a summary)."""
        self._redis = redis
        self._backoff = Backoff(base=0.05, cap=1.0)
        self._shared = shared
        self._owner = owner
        self._owner_seen: str | None = None
        self._lost = lost
        self._connected = connected
        self._outage = outage or OutageLog(log)
        self._keys = keys
        self._clock = clock
        self._block_ms = block_ms
        self._apply = apply
        self._empty = empty
        self._positioned = positioned
        parts = range(keys.partitions) if partitions is None else partitions
        self._member = tuple(parts)
        self._changes = [keys.stream(p) for p in parts]
        self._invalidations = {keys.invalidations(p) for p in parts}
        self._last: dict[str, Version] | None = None
        self._added: dict[str, int] = {}  # the stream's entries-added at our position

    async def run(self) -> None:
        """Follow until cancelled; a lost connection is resumed from after the shared
        backoff's delay (reset once connected again). Raises anything else."""
        while True:
            client = self._shared or feed_client(self._redis, self._block_ms() / 1000)
            try:
                await self._follow(client)
            except Exception as exc:
                if not (isinstance(exc, self._lost) or is_torn_connection(exc)):
                    raise
                self._connected(False)
                self._outage.failed(self._member, type(exc).__name__)
            finally:
                if self._shared is None:
                    await client.aclose()
            await asyncio.sleep(self._backoff.next_delay())

    async def _follow(self, client: Redis) -> None:
        await self._resync(client)
        self._connected(True)
        self._outage.connected(self._member)
        self._backoff.reset()
        while True:
            block_ms = self._block_ms()
            sent = time.monotonic()
            assert self._last is not None
            reply = await client.xread(
                {name: str(v) for name, v in self._last.items()},
                count=BATCH,
                block=block_ms,
            )
            if self._applied(reply):
                if self._moved():
                    await self._start_over(client, "the partition's master changed")
                else:
                    self._clock.caught_up(known_at(sent, time.monotonic(), reply, block_ms))
            elif await self._trimmed(client):  # behind: make sure nothing was trimmed away
                await self._start_over(client)

    async def _resync(self, client: Redis) -> None:
        if self._last is None:
            self._owner_seen = self._owner() if self._owner else None
            self._last = await self._heads(client)
            self._positioned()
            SDK_NEAR_RESYNCS.labels("start").inc()
        elif self._moved():
            await self._start_over(client, "the partition's master changed")
        elif await self._trimmed(client):
            await self._start_over(client)
        else:
            SDK_NEAR_RESYNCS.labels("resume").inc()

    def _moved(self) -> bool:
        """Whether another server serves the partitions now than when positioned."""
        return self._owner is not None and self._owner() != self._owner_seen

    async def _start_over(
        self, client: Redis, why: str = "its position was trimmed from the streams"
    ) -> None:
        log.warning("near-cache feed: %s; emptying", why)
        self._clock.lost()
        self._empty()
        self._owner_seen = self._owner() if self._owner else None
        self._last = await self._heads(client)
        self._positioned()
        SDK_NEAR_RESYNCS.labels("empty").inc()

    def _names(self) -> list[str]:
        return [*self._changes, *sorted(self._invalidations)]

    async def _stream_info(self, client: Redis) -> dict[str, Mapping[Any, Any] | None]:
        pipe = client.pipeline(transaction=False)
        names = self._names()
        for name in names:
            pipe.execute_command("XINFO", "STREAM", name)
        replies = await pipe.execute(raise_on_error=False)
        info: dict[str, Mapping[Any, Any] | None] = {}
        for name, reply in zip(names, replies, strict=True):
            if isinstance(reply, ResponseError):
                info[name] = None  # no such stream (yet)
            elif isinstance(reply, BaseException):
                raise reply
            else:
                info[name] = _as_mapping(reply)
        return info

    async def _heads(self, client: Redis) -> dict[str, Version]:
        """Every stream's last generated id: the point from which an empty near cache follows."""
        info = await self._stream_info(client)
        self._added = {name: _int(fields, "entries-added") for name, fields in info.items()}
        return {name: _id(fields, "last-generated-id") for name, fields in info.items()}

    async def _trimmed(self, client: Redis) -> bool:
        """Whether Redis deleted a record after our position in some stream."""
        assert self._last is not None
        info = await self._stream_info(client)
        for name, fields in info.items():
            if _gap(fields, self._last[name], self._added.get(name, 0)):
                return True
        return False

    def _applied(self, reply: Any) -> bool:
        """Apply a reply's records; ``True`` when no stream came back full (caught up)."""
        assert self._last is not None
        caught_up = True
        newest_ms = 0
        for raw_name, entries in _streams(reply):
            name = as_text(raw_name)
            invalidation = name in self._invalidations
            for entry_id, fields in entries:
                version = Version.parse(entry_id)
                eviction = (
                    from_invalidation(fields) if invalidation else from_change(entry_id, fields)
                )
                if eviction is not None:
                    self._apply(eviction)
                self._last[name] = version
                self._added[name] = self._added.get(name, 0) + 1
                newest_ms = max(newest_ms, version.ms)
            if len(entries) >= BATCH:
                caught_up = False
        if newest_ms:
            SDK_NEAR_FEED_LAG.set(max(0.0, time.time() - newest_ms / 1000))
        elif caught_up:
            SDK_NEAR_FEED_LAG.set(0.0)  # nothing left to apply: an idle feed is not late
        return caught_up


def known_at(sent: float, received: float, reply: Any, block_ms: int) -> float:
    """The moment (monotonic seconds) an applied ``XREAD`` reply proves the feed caught up.

    Any reply holds every record added before the command was ``sent``. An
    empty reply that took the whole ``BLOCK`` proves more: the server waited
    ``block_ms`` after receiving the command (it cannot have received it before
    it was sent) and no record came, so nothing was added until
    ``sent + block``. Counting only ``sent`` made an idle feed look up to two
    ``BLOCK``s behind just before each reply was handled, which is ``max_stale``
    itself when ``block`` is half of it. (A reply quicker than ``BLOCK`` was not
    a timeout, for instance ``CLIENT UNBLOCK``: only ``sent`` is known then.)
    """
    block_s = block_ms / 1000
    if _streams(reply) or received - sent < block_s:
        return sent
    return sent + block_s


def _streams(reply: Any) -> Sequence[tuple[Any, Sequence[tuple[Any, Any]]]]:
    if not reply:
        return []
    if isinstance(reply, Mapping):  # RESP3
        return [
            (name, entries[0] if entries and isinstance(entries[0], list) else entries)
            for name, entries in reply.items()
        ]
    return [(name, entries) for name, entries in reply]


def _as_mapping(reply: Any) -> Mapping[Any, Any]:
    if isinstance(reply, Mapping):
        return {as_text(k): v for k, v in reply.items()}
    pairs = list(reply)
    return {as_text(k): v for k, v in zip(pairs[::2], pairs[1::2], strict=True)}


def _gap(fields: Mapping[Any, Any] | None, last: Version, added_at_last: int) -> bool:
    """Whether records after ``last`` were deleted (``fields``: XINFO STREAM; ``None``: gone)."""
    if fields is None:
        return added_at_last > 0  # the stream existed and is gone
    added = _int(fields, "entries-added")
    if added < added_at_last:
        return True  # the stream was deleted and made again
    first = fields.get("first-entry")
    if first and Version.parse(first[0]) <= last:
        return False  # only records up to our position can have been trimmed
    return added - added_at_last > _int(fields, "length")


def _int(fields: Mapping[Any, Any] | None, name: str) -> int:
    return 0 if fields is None else int(fields.get(name) or 0)


def _id(fields: Mapping[Any, Any] | None, name: str) -> Version:
    if fields is None:
        return ZERO
    value = fields.get(name)
    if value is None:
        return ZERO
    return Version.parse(value)
