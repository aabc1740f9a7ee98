"""``WriteBehind``: the producer SDK's entry point; owns the Redis and MongoDB handles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import anyio
from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient, ReadPreference
from redis.asyncio import Redis

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS, encoding_options
from writebehind.core.deployment import check_codec, record_partition_count
from writebehind.core.errors import ClientClosed, ConfigurationError
from writebehind.core.keys import KeySpace, validate_collection_name
from writebehind.core.redis_client import (
    connect,
    is_cluster,
    pool_limits,
    socket_timeout,
    typed_pool_errors,
)
from writebehind.core.scripts import Scripts
from writebehind.core.shard_key import collection_shard_key, parse_shard_keys
from writebehind.core.shielded import ShieldedCalls
from writebehind.sdk.collection import Collection
from writebehind.sdk.computing.cached import CachedFunction
from writebehind.sdk.computing.journal import DEFAULT_LIMIT, Invalidation, Journal
from writebehind.sdk.computing.keys import check_name
from writebehind.sdk.computing.options import DependsOn, KeySpec, Options
from writebehind.sdk.computing.store import ComputedStore
from writebehind.sdk.near.layer import NearLayer
from writebehind.sdk.reading.breaker import CircuitBreaker
from writebehind.sdk.reading.flights import Flights
from writebehind.sdk.reading.guard import RedisGuard
from writebehind.sdk.reading.policy import ReadPolicy
from writebehind.sdk.seeding import PartitionSeeder

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_GROUP = "writebehind"
DEFAULT_MAX_BACKLOG = 1_000_000


def _journal(journal: bool | int) -> Journal | None:
    if journal is True:
        return Journal(DEFAULT_LIMIT)
    if journal is False:
        return None
    if type(journal) is not int:
        raise ConfigurationError(f"journal must be a bool or an int limit: {journal!r}")
    return Journal(journal)


class WriteBehind:
    """Write documents to Redis now and to MongoDB soon, newest version winning.

    Give either URLs (the clients are created and closed here) or ready clients:
    a ``redis.asyncio.Redis`` and a PyMongo ``AsyncDatabase`` (a Motor database
    works too). Use it as ``async with wb:``.

    Args:
        prefix: namespaces every Redis key, so applications can share a Redis.
        partitions: number of partition streams; fixed per prefix once used.
        group: the workers' consumer group, used to measure the backlog.
        max_backlog: unpersisted records a partition may hold before writes
            raise ``BacklogFull``; 0 disables the limit.
        backlog_wait: seconds a write waits for the backlog to drain before
            raising ``BacklogFull``.
        max_conflict_retries: how often ``patch``/``modify`` retry after a
            concurrent write before raising ``TooManyConflicts``.
        wait_replicas: after each write, wait (Redis ``WAIT``) until this many
            replicas have it, for writes that must survive the loss of the
            primary; fewer in time raises ``NotReplicated``. 0 (default): no wait.
        wait_timeout: seconds to wait for them; under the client's socket timeout.
        redis_cluster: ``redis_url`` names a node of a Redis Cluster (any node
            will do); a ``redis.asyncio.cluster.RedisCluster`` passed as
            ``redis`` is recognised without it. On a cluster ``wait_replicas``
            waits for the replicas of each master a write went to, and the near
            cache follows each partition on its own (README, "Redis Cluster").
        reads: the ``ReadPolicy`` of every collection that gives none of its own
            (fills, negative caching, stampede control, early refresh). Its
            ``redis_timeout`` and breaker settings also bound writes: a write
            Redis does not answer in time raises ``CacheUnavailable``.
        journal: for cached computations (``cached``): ``False`` (default), an
            invalidation Redis does not take raises ``CacheUnavailable``;
            ``True`` (or a limit, default 10,000) keeps it in a bounded
            in-process journal applied before Redis serves a computed value
            again (README, "Caching computations").
        shard_keys: ``{collection: shard key}`` of sharded MongoDB collections
            (a field name, a tuple of them, or the key document of
            ``sh.shardCollection``); see ``collection(shard_key=...)``.

    Raises:
        ConfigurationError: an option out of range or of the wrong type, both or
            neither of a URL and a client, a URL redis-py refuses, a Redis client
            with ``decode_responses=True``, or a ``wait_timeout`` not under the
            socket timeout. Nothing was opened.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        mongo_url: str | None = None,
        database: str | None = None,
        *,
        redis: Redis | None = None,
        mongo: Any = None,
        prefix: str = "wb",
        partitions: int = 16,
        group: str = DEFAULT_GROUP,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        backlog_wait: float = 0.0,
        max_conflict_retries: int = 200,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
        reads: ReadPolicy | None = None,
        redis_cluster: bool = False,
        journal: bool | int = False,
        shard_keys: Mapping[str, Any] | None = None,
    ) -> None:
        self.keys = KeySpace(prefix, partitions)
        self.shard_keys = parse_shard_keys(shard_keys)
        for name, value in (("backlog_wait", backlog_wait), ("wait_timeout", wait_timeout)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{name} must be a number of seconds: {value!r}")
        if not isinstance(group, str) or not group:
            raise ConfigurationError(f"group must be a non-empty str: {group!r}")
        if type(max_conflict_retries) is not int:
            raise ConfigurationError(
                f"max_conflict_retries must be an int: {max_conflict_retries!r}"
            )
        if type(max_backlog) is not int or max_backlog < 0:
            raise ConfigurationError(f"max_backlog must be an int >= 0: {max_backlog!r}")
        if backlog_wait < 0:
            raise ConfigurationError(f"backlog_wait must be >= 0: {backlog_wait!r}")
        if max_conflict_retries < 1:
            raise ConfigurationError("max_conflict_retries must be >= 1")
        if type(wait_replicas) is not int or wait_replicas < 0:
            raise ConfigurationError(f"wait_replicas must be an int >= 0: {wait_replicas!r}")
        if not wait_timeout > 0:
            raise ConfigurationError(f"wait_timeout must be > 0: {wait_timeout!r}")
        self.wait_replicas = wait_replicas
        self.wait_timeout = float(wait_timeout)
        self.group = group
        self.max_backlog = max_backlog
        self.backlog_wait = float(backlog_wait)
        self.max_conflict_retries = max_conflict_retries
        if not isinstance(redis_cluster, bool):
            raise ConfigurationError(f"redis_cluster must be a bool: {redis_cluster!r}")
        self._owned: list[Any] = []
        self.redis = self._redis_client(redis, redis_url, redis_cluster)
        self.cluster = is_cluster(self.redis)
        self.mongo = self._mongo_database(mongo, mongo_url, database)
        self.codec_options: CodecOptions[Any] = encoding_options(
            getattr(self.mongo, "codec_options", None)
        )
        self._check_wait_timeout()
        if reads is not None and not isinstance(reads, ReadPolicy):
            raise ConfigurationError(f"reads must be a ReadPolicy: {reads!r}")
        self.reads = reads or ReadPolicy()

        self.read_flights = Flights()
        self.near = NearLayer(self.redis, self.keys)  # near caches; idle unless a policy asks
        self.scripts = Scripts(self.redis)
        self.seeder = PartitionSeeder(self)  # seeds partitions on a new primary (sdk/seeding.py)
        self._checked = False
        self._closed = False
        self._check_lock = anyio.Lock()
        self._calls = ShieldedCalls()
        self.redis_guard = RedisGuard(
            CircuitBreaker(self.reads.breaker_failures, self.reads.breaker_cooldown),
            prefix,
            self._calls,
            *pool_limits(self.redis),
        )
        self.computed = ComputedStore(self, _journal(journal))

    def cached(
        self,
        function: Any = None,
        /,
        *,
        ttl: float | None = None,
        key: KeySpec = None,
        tags: Iterable[str] = (),
        namespace: str | None = None,
        depends_on: DependsOn | None = None,
        cache_if: Callable[[Any], bool] | None = None,
        early_refresh: float | None = None,
        lock_timeout: float | None = None,
    ) -> Callable[[Callable[P, Awaitable[R]]], CachedFunction[P, R]]:
        """Cache an async function's results in Redis (README, "Caching computations").

        Args:
            ttl: seconds a stored value lives (a ``None`` result: at most the
                ``ReadPolicy``'s ``negative_ttl``, capped by ``max_negative_ttl``).
            key: a ``str.format`` template over the parameters by name
                (``"profile:{user_id}"``) or a callable of the arguments; default:
                ``<module>.<qualname>:<sha256 of the arguments' canonical BSON>``.
            tags: templates like ``key``; ``invalidate_tags`` makes every value
                carrying one stale.
            namespace: ``bump_namespace`` makes all its values stale; default the
                function's ``<module>.<qualname>``.
            depends_on: a callable of the arguments returning ``(collection, id)``
                pairs: a write to any of them (through any SDK client) makes the
                value stale.
            cache_if: a predicate of the result: false, not stored. Exceptions
                are never stored.
            early_refresh: XFetch's beta; default the ``ReadPolicy``'s.
            lock_timeout: seconds one process may hold a value's fill lease, and
                others wait for its fill; default the ``ReadPolicy``'s. A
                computation that takes longer cannot store its value.

        Raises ``ConfigurationError`` for a bad or missing option (``ttl`` is
        required; ``@wb.cached`` without parentheses is refused; ``tags`` must
        be a list or tuple of templates), a template naming no parameter, a sync
        function, or a Redis Cluster client (one check reads keys of several
        hash slots in one Lua call); ``ClientClosed`` after ``aclose()``.
        """
        if self._closed:
            raise ClientClosed("this WriteBehind is closed; make a new one")
        if function is not None:
            raise ConfigurationError(
                "cached takes its options in parentheses: write @wb.cached(ttl=300, ...), "
                f"not @wb.cached (given {function!r:.80})"
            )
        if ttl is None:
            raise ConfigurationError(
                "cached needs ttl=, the seconds a value lives: @wb.cached(ttl=300, ...)"
            )
        if self.cluster:
            raise ConfigurationError(
                "cached computations do not work on a Redis Cluster: a value's check reads its "
                "generations and its dependencies' cache entries, in several hash slots, in "
                "one Lua call (docs/scaling.md)"
            )
        if isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
            raise ConfigurationError(f"tags must be a list of templates: {tags!r}")
        options = Options(
            ttl, key, tuple(tags), namespace, depends_on, cache_if, early_refresh, lock_timeout
        )

        def decorate(fn: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
            return CachedFunction(self, self.computed, fn, options)

        return decorate

    async def invalidate_tags(self, *tags: str) -> None:
        """Make every computed value carrying one of ``tags`` stale (their generations move on).

        Raises ``InvalidInput`` for a tag that is not a non-empty ``str``;
        ``CacheUnavailable`` when Redis is unavailable, unless the client has a
        journal (then kept and applied before Redis serves a computed value again).
        """
        with self.calling():
            items = [Invalidation("tag", check_name("tag", t)) for t in tags]
            if items:
                await self.computed.bump(items)

    async def bump_namespace(self, namespace: str) -> None:
        """Make every computed value of ``namespace`` stale at once.

        Raises as ``invalidate_tags``.
        """
        with self.calling():
            item = Invalidation("namespace", check_name("namespace", namespace))
            await self.computed.bump([item])

    async def redis_call(self, call: Awaitable[T]) -> T:
        """Run a Redis call to its end even if the caller is cancelled (see core/shielded.py).

        Raises whatever ``call`` raises.
        """
        return await self._calls.run(call)

    def calling(self) -> AbstractContextManager[None]:
        """Around every public call: refuse a closed client; type pool exhaustion.

        Raises ``ClientClosed`` after ``aclose()``; ``ConnectionPoolExhausted``
        when no Redis connection became free in the pool's wait. (Not a generator
        context manager: this is on every call's path, docs/benchmarks.md "Round 2".)
        """
        if self._closed:
            raise ClientClosed("this WriteBehind is closed; make a new one")
        return typed_pool_errors()

    def _redis_client(self, redis: Redis | None, url: str | None, cluster: bool) -> Redis:
        if (redis is None) == (url is None):
            raise ConfigurationError("give exactly one of redis_url and redis")
        if redis is None:
            if not isinstance(url, str):
                raise ConfigurationError(f"redis_url must be a str: {url!r}")
            try:
                redis = connect(url, cluster=cluster)
            except ValueError as exc:  # redis-py's refusal of the URL (scheme, options)
                raise ConfigurationError(f"redis_url {url!r}: {exc}") from exc
            self._owned.append(redis)
        elif not isinstance(redis, Redis) and not is_cluster(redis):
            raise ConfigurationError(
                f"redis must be a redis.asyncio.Redis or RedisCluster client: {redis!r:.80}"
            )
        kwargs = redis.get_connection_kwargs()  # type: ignore[no-untyped-call]
        if kwargs.get("decode_responses"):
            raise ConfigurationError(
                "the Redis client must not use decode_responses=True: cache entries are BSON"
            )
        return redis

    def _check_wait_timeout(self) -> None:
        timeout = socket_timeout(self.redis)
        if self.wait_replicas and timeout is not None and self.wait_timeout >= timeout:
            # The client would give up on the reply first: an unknown outcome for every slow WAIT.
            raise ConfigurationError(
                f"wait_timeout ({self.wait_timeout:g} s) must be under the Redis client's "
                f"socket timeout ({timeout:g} s)"
            )

    def _mongo_database(self, mongo: Any, url: str | None, database: str | None) -> Any:
        if (mongo is None) == (url is None):
            raise ConfigurationError("give exactly one of mongo_url and mongo")
        if mongo is not None:
            return mongo  # not type-checked: the benchmarks pass a stand-in no write touches
        if not isinstance(url, str):
            raise ConfigurationError(f"mongo_url must be a str: {url!r}")
        if not isinstance(database, str) or not database:
            raise ConfigurationError(f"database is required with mongo_url, a str: {database!r}")
        client: AsyncMongoClient[Any] = AsyncMongoClient(
            url, uuidRepresentation="standard", tz_aware=DEFAULT_CODEC_OPTIONS.tz_aware
        )
        self._owned.append(client)
        return client[database]

    async def ensure_ready(self) -> None:
        """Record the partition count and codec options in Redis, or refuse different ones.

        Raises:
            ClientClosed: after ``aclose()``.
            PartitionCountMismatch, CodecMismatch: Redis records another value
                (both name the configured and the recorded one).
            CacheUnavailable: Redis did not answer within ``redis_timeout``.
        """
        if self._closed:
            raise ClientClosed("this WriteBehind is closed; make a new one")
        if self._checked:
            return
        async with self._check_lock:
            if self._checked:
                return
            await self.redis_guard.call(
                lambda: record_partition_count(self.redis, self.keys),
                self.write_timeout,
                "a check",
            )
            await self.redis_guard.call(
                lambda: check_codec(self.redis, self.keys, self.codec_options),
                self.write_timeout,
                "a check",
            )
            self._checked = True

    @property
    def write_timeout(self) -> float:
        """Seconds a write waits for Redis before ``CacheUnavailable``: ``redis_timeout``,
        plus ``wait_timeout`` when writes wait for replicas."""
        return self.reads.redis_timeout + (self.wait_timeout if self.wait_replicas else 0.0)

    def collection(
        self,
        name: str,
        *,
        reads: ReadPolicy | None = None,
        mode: str = "write_behind",
        write_through_timeout: float = 5.0,
        shard_key: Any = None,
    ) -> Collection:
        """One collection. ``reads`` overrides the client's ``ReadPolicy`` for it.

        ``shard_key``: the collection is sharded on these top-level fields
        (``"tenant"``, ``("tenant", "region")`` or ``{"tenant": 1}``); every write
        carries their values so the workers' upserts target one shard
        (docs/scaling.md, "Sharded collections"). Defaults to the client's
        ``shard_keys`` entry; giving another one raises ``ConfigurationError``.

        ``mode="write_through"``: writes return only once MongoDB holds them
        (journaled), retrying transient MongoDB failures, or raise ``PersistTimeout``
        after ``write_through_timeout`` seconds (at once if MongoDB refuses the
        write), the write staying queued for the workers (README, "Reading").
        """
        if self._closed:
            raise ClientClosed("this WriteBehind is closed; make a new one")
        name = validate_collection_name(name)
        if reads is not None and not isinstance(reads, ReadPolicy):
            raise ConfigurationError(f"reads must be a ReadPolicy: {reads!r}")
        sharded = collection_shard_key(self.shard_keys, name, shard_key)
        if mode == "write_behind":
            return Collection(self, name, reads=reads, shard_key=sharded)
        if mode == "write_through":
            from writebehind.sdk.reading.write_through import WriteThroughCollection

            return WriteThroughCollection(self, name, reads, write_through_timeout, sharded)
        raise ConfigurationError(f"mode must be 'write_behind' or 'write_through': {mode!r}")

    def mongo_collection(self, name: str) -> Any:
        """The MongoDB collection ``name`` with the SDK's codec options (UUIDs, tz), on the primary.

        Always the primary, whatever the database handle's read preference: a
        secondary behind it would fill the cache with an older version than
        MongoDB holds, base a ``patch`` on it, or keep ``wait_persisted`` waiting.
        """
        return self.mongo.get_collection(
            name, codec_options=self.codec_options, read_preference=ReadPreference.PRIMARY
        )

    async def __aenter__(self) -> WriteBehind:
        try:
            await self.ensure_ready()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the clients this object created; clients passed in stay open.

        Every later call raises ``ClientClosed``. Document loads and cached
        functions' computations still running are cancelled (their fill leases
        given back, nothing stored), and so are early refreshes in the background:
        the calls waiting for them raise ``ClientClosed`` too (README, "Caching
        computations"). Closing twice is harmless.
        """
        self._closed = True
        # First the flights: cancelled, they give their leases back through ``_calls``.
        await self.read_flights.close()
        # Calls whose callers were cancelled still hold connections: let them end first.
        await self._calls.drain(socket_timeout(self.redis) or 10.0)
        self.computed.close()
        await self.near.close()
        owned, self._owned = self._owned, []
        for client in owned:
            if isinstance(client, Redis) or is_cluster(client):
                await client.aclose()
            else:
                await client.close()
