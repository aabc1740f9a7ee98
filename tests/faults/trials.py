"""Randomized fault trials: servers, producers, workers, one fault type each, then the oracle.

``run_trial(kind, seed, workdir)`` runs one trial and returns its figures (and
appends them to ``$WRITEBEHIND_FAULT_REPORT`` when set); an invariant broken
raises an ``AssertionError`` that names the seed, the trial type and the
invariant. Everything started here is stopped here, whatever happens.
"""

from __future__ import annotations

import json
import os
import random
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from bson import encode as bson_encode
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect, OperationFailure
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import EncodableT, FieldT

from tests.faults.oracle import (
    COLLECTION,
    DEAD_LETTER,
    LOST,
    PENDING,
    STALE,
    UNREPORTED,
    Call,
    Oracle,
)
from tests.support.cluster import LocalCluster
from tests.support.config import fast_settings
from tests.support.processes import WorkerProcess
from tests.support.proxy import Mode, Proxy
from tests.support.servers import RedisServer, SecantusServer, replica_online
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.core.redis_client import connect, connect_cluster, default_retry
from writebehind.worker.runner import Worker

PREFIX = "f"
PARTITIONS = 4
DOCS = 10
# Values that look like operators or field paths: they must round-trip exactly.
TRICKY = ["$set", "$$ROOT.a", "$x", "$$REMOVE", "a.b", "{$literal: 1}", ""]
QUIET_WITHIN = 60.0


async def fault_delay(rng: random.Random, low: float, high: float) -> None:
    """Wait a random time: the fault schedule itself, never a stand-in for synchronisation."""
    await anyio.sleep(rng.uniform(low, high))


@dataclass
class Env:
    kind: str
    seed: int
    workdir: Path
    rng: random.Random
    redis_server: RedisServer
    mongo_server: SecantusServer
    redis: Redis
    mongo: AsyncMongoClient[Any]
    oracle: Oracle
    stack: AsyncExitStack
    tg: Any
    procs: list[WorkerProcess] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    serial: int = 0
    poison_rate: float = 0.0
    deadline_range: tuple[float, float] | None = None
    doc_pad: int = 20
    producer_url: str | None = None
    """The producers' Redis URL (a proxy in front of Redis); the server's own when None."""
    producer_options: dict[str, Any] = field(default_factory=dict)
    """Extra ``Redis.from_url`` options for the producers (timeouts, retry)."""
    sdk_options: dict[str, Any] = field(default_factory=dict)
    """Extra ``WriteBehind`` options for the producers (``wait_replicas``)."""
    extra: dict[str, Any] = field(default_factory=dict)
    cluster: bool = False
    """Redis is a cluster (``redis_server``: one of its nodes); every client is a cluster client."""

    def connect(self, url: str | None = None, **options: Any) -> Redis:
        """A client of ``url`` (Redis's own when None): a cluster client on a cluster."""
        if self.cluster:
            return connect_cluster(url or self.redis_server.url)
        return Redis.from_url(url or self.redis_server.url, **options)

    @property
    def db(self) -> Any:
        return self.mongo["faults"]

    @property
    def keys(self) -> KeySpace:
        return KeySpace(PREFIX, PARTITIONS)

    # -- workers -----------------------------------------------------------------

    def spawn(self, *, crash_at: tuple[str, int] | None = None, **flags: Any) -> WorkerProcess:
        """A subprocess worker (for kill -9 and SIGSTOP; ``crash_at``: see crashpoints.py)."""
        n = len(self.procs)
        flags.setdefault("batch_size", 50)
        flags.setdefault("linger", "2ms")
        flags.setdefault("claim_idle", "1s")
        if self.cluster:
            flags["redis_cluster"] = True
        proc = WorkerProcess(
            redis_url=self.redis_server.url,
            mongo_url=self.mongo_server.url,
            database="faults",
            log_path=self.workdir / f"worker-{n}.log",
            prefix=PREFIX,
            partitions=PARTITIONS,
            consumer=f"proc-{n}",
            crash_at=crash_at,
            **flags,
        )
        self.procs.append(proc)
        return proc.start()

    async def crash(self, point: str, nth: int, within: float = 45.0) -> None:
        """Start a worker that kills itself the ``nth`` time it reaches ``point``; wait for it."""
        proc = self.spawn(crash_at=(point, nth))
        deadline = anyio.current_time() + within
        while proc.poll() is None:
            if anyio.current_time() > deadline:
                raise AssertionError(
                    f"{self.oracle.prefix()}: crash point {point} #{nth} not reached in {within}s"
                )
            await anyio.sleep(0.02)
        if proc.crash_point() is None:
            raise AssertionError(
                f"{self.oracle.prefix()}: the worker died before crash point {point}:\n"
                + proc.output()[-3000:]
            )
        self.extra.setdefault("crashes", []).append(f"{point}#{nth}")

    async def start_worker(
        self, *, db: Any = None, redis: Redis | None = None, **overrides: Any
    ) -> Worker:
        """An in-process worker with fast claiming, its own Redis pool (or ``redis``, and
        ``db``, if given)."""
        client = redis or self.connect()
        self.stack.push_async_callback(client.aclose)
        overrides.setdefault("batch_size", 50)
        settings = fast_settings(
            prefix=PREFIX,
            partitions=PARTITIONS,
            consumer=f"inproc-{len(self.workers)}",
            drain_timeout=5.0,
            **overrides,
        )
        worker = Worker(client, self.db if db is None else db, settings)
        self.tg.start_soon(worker.run)
        with anyio.fail_after(30):
            await worker.started.wait()
        self.workers.append(worker)
        return worker

    # -- producers -----------------------------------------------------------------

    def _content(self, producer: int) -> dict[str, Any]:
        self.serial += 1
        return {
            "w": f"p{producer}-{self.serial}",
            "n": self.serial,
            "s": self.rng.choice(TRICKY),
            "pad": "x" * self.doc_pad,
        }

    async def one_call(self, wb: WriteBehind, producer: int) -> None:
        coll = wb.collection(COLLECTION)
        rng = self.rng
        deadline = rng.uniform(*self.deadline_range) if self.deadline_range else None
        if self.poison_rate and rng.random() < self.poison_rate:
            await self._poison(wb, producer, deadline)
            return
        doc_id = f"d{rng.randrange(DOCS)}"
        op = rng.choices(["set", "patch", "modify", "delete"], [5, 2, 2, 1])[0]
        if op == "set":
            content = self._content(producer)
            call = Call("set", doc_id, content)
            await self.oracle.run(call, lambda: coll.set(doc_id, content), deadline=deadline)
        elif op == "patch":
            fields = {"patched": f"p{producer}-{self.serial}", "s": rng.choice(TRICKY)}
            self.serial += 1
            call = Call("patch", doc_id, fields)
            await self.oracle.run(call, lambda: coll.patch(doc_id, fields), deadline=deadline)
        elif op == "modify":
            call = Call("modify", doc_id, None)
            tag = self._content(producer)

            def bump(doc: dict[str, Any] | None) -> dict[str, Any]:
                new = {**tag, "count": int((doc or {}).get("count", 0)) + 1}
                call.content = new  # the last computation is the one written
                return new

            await self.oracle.run(call, lambda: coll.modify(doc_id, bump), deadline=deadline)
        else:
            call = Call("delete", doc_id, None)
            await self.oracle.run(call, lambda: coll.delete(doc_id), deadline=deadline)

    async def _poison(self, wb: WriteBehind, producer: int, deadline: float | None) -> None:
        coll = wb.collection(COLLECTION)
        self.serial += 1
        doc_id = f"poison-{self.serial}"
        kind = self.rng.choice(["validator", "unique", "refused"])
        if kind == "validator":
            content: dict[str, Any] = {"age": "not an int", "s": "$set"}
        elif kind == "unique":
            content = {"email": "taken", "s": "$$ROOT.a"}
        else:
            # The SDK refuses this before writing anything: failed, never dead-lettered.
            content = {"$set": {"a": 1}}
        call = Call("set", doc_id, content, poison=True)
        await self.oracle.run(call, lambda: coll.set(doc_id, content), deadline=deadline)
        if kind == "refused" and call.outcome != "failed":
            self.oracle.fail("refusal", f"{doc_id!r} with a $-field was {call.outcome}")

    async def producer(self, n: int, stop: anyio.Event) -> None:
        client = self.connect(self.producer_url, **self.producer_options)
        try:
            async with WriteBehind(
                redis=client,
                mongo=self.db,
                prefix=PREFIX,
                partitions=PARTITIONS,
                **self.sdk_options,
            ) as wb:
                while not stop.is_set():
                    try:
                        await self.one_call(wb, n)
                    except Exception as exc:  # recorded on the call already
                        if not self.oracle.calls or self.oracle.calls[-1].outcome == "pending":
                            raise AssertionError(
                                f"{self.oracle.prefix()}: producer error {exc!r}"
                            ) from exc
                    await fault_delay(self.rng, 0, 0.01)
        finally:
            await client.aclose()

    @asynccontextmanager
    async def load(self, producers: int = 3) -> AsyncIterator[None]:
        """Producers (and the MongoDB monitor) run for the block."""
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            for n in range(producers):
                tg.start_soon(self.producer, n, stop)
            yield
            stop.set()

    # -- settling ------------------------------------------------------------------

    async def settle(self, *, within: float = QUIET_WITHIN, dead_letters: bool = True) -> float:
        """Wait until quiet and the oracle holds; return the time it took (the recovery time)."""
        start = anyio.current_time()
        deadline = start + within
        while True:
            self.oracle.violations.clear()
            await self.oracle.verify(self.redis, self.db, check_dead_letters=dead_letters)
            if not self.oracle.violations:
                return anyio.current_time() - start
            if anyio.current_time() > deadline:
                self.oracle.raise_if_failed()
            await anyio.sleep(0.1)


async def _setup_collection(db: Any) -> None:
    """Poison sources: a validator and a secondary unique index with a taken value."""
    await db.create_collection(
        COLLECTION,
        validator={"$jsonSchema": {"properties": {"age": {"bsonType": "int"}}}},
    )
    await db[COLLECTION].create_index("email", unique=True, sparse=True)
    await db[COLLECTION].insert_one({"_id": "anchor", "email": "taken", "_wb": {"v": [0, 0]}})


# -- trial types ------------------------------------------------------------------


async def kill9(env: Env) -> float:
    rng = env.rng
    env.spawn()
    env.spawn()
    await env.start_worker(claim_idle=1.0)
    async with env.load():
        for _ in range(rng.randint(2, 4)):
            await fault_delay(rng, 0.1, 0.8)
            alive = [p for p in env.procs if p.poll() is None]
            victim = rng.choice(alive)
            victim.kill()
            env.spawn()
        await fault_delay(rng, 0.1, 0.5)
    return await env.settle()


async def zombie(env: Env) -> float:
    """A worker frozen past claim_idle, then resumed: its late writes change nothing,
    and its late dead-letter moves of records the claimer already moved add no letter."""
    rng = env.rng
    env.poison_rate = 0.1
    frozen = env.spawn()
    await env.start_worker(claim_idle=1.0)
    async with env.load():
        await fault_delay(rng, 0.2, 0.8)
        frozen.send(signal.SIGSTOP)
        try:
            await fault_delay(rng, 1.5, 2.5)  # past claim_idle: its entries are taken
        finally:
            frozen.send(signal.SIGCONT)
        await fault_delay(rng, 0.2, 0.8)
    return await env.settle()


async def mongo_restart(env: Env) -> float:
    rng = env.rng
    await env.start_worker()
    await env.start_worker()
    async with env.load():
        for _ in range(rng.randint(1, 2)):
            await fault_delay(rng, 0.2, 0.8)
            if rng.random() < 0.5:
                env.mongo_server.kill()
            else:
                env.mongo_server.stop()
            await fault_delay(rng, 0.2, 1.0)
            env.mongo_server.start()
        await fault_delay(rng, 0.2, 0.5)
    return await env.settle()


FAILURES: list[dict[str, Any]] = [
    {"errorCode": 91, "errorLabels": ["RetryableWriteError"]},
    {"errorCode": 11602},
    {"errorCode": 189},
    {"closeConnection": True},
    {"writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}},
    {
        "writeConcernError": {
            "code": 91,
            "errmsg": "shutdown",
            "errorLabels": ["RetryableWriteError"],
        }
    },
]


async def mongo_failcommand(env: Env) -> float:
    rng = env.rng
    await env.start_worker()
    admin = env.mongo.admin
    async with env.load():
        for _ in range(rng.randint(2, 4)):
            await fault_delay(rng, 0.1, 0.5)
            data = {"failCommands": ["update"], **rng.choice(FAILURES)}
            mode = {"times": rng.randint(1, 8)}
            await _fail_point(admin, mode, data)
        await fault_delay(rng, 0.2, 0.5)
    await _fail_point(admin, "off", None)
    return await env.settle()


async def _fail_point(admin: Any, mode: Any, data: dict[str, Any] | None) -> None:
    """Set the fail point, retrying (poll with a deadline) while the pool is reset by one."""
    deadline = anyio.current_time() + 30
    extra = {} if data is None else {"data": data}
    while True:
        try:
            await admin.command("configureFailPoint", "failCommand", mode=mode, **extra)
            return
        except (AutoReconnect, OperationFailure):
            if anyio.current_time() > deadline:
                raise
            await anyio.sleep(0.05)


async def poison(env: Env) -> float:
    env.poison_rate = 0.15
    await env.start_worker()
    async with env.load():
        await fault_delay(env.rng, 1.0, 2.0)
    return await env.settle()


async def cancellation(env: Env) -> float:
    env.deadline_range = (0.0, 0.004)
    await env.start_worker()
    async with env.load(producers=4):
        await fault_delay(env.rng, 1.0, 2.0)
    return await env.settle()


async def redis_restart_aof(env: Env) -> float:
    rng = env.rng
    await env.start_worker()
    async with env.load():
        for _ in range(rng.randint(1, 2)):
            await fault_delay(rng, 0.2, 0.8)
            if rng.random() < 0.5:
                env.redis_server.kill()
            else:
                env.redis_server.stop()
            await fault_delay(rng, 0.0, 0.5)
            env.redis_server.start()
        await fault_delay(rng, 0.2, 0.5)
    return await env.settle()


async def redis_restart_no_persistence(env: Env) -> float:
    rng = env.rng
    worker = await env.start_worker()
    async with env.load():
        await fault_delay(rng, 0.3, 1.0)
        before = dict(env.oracle.history)
        env.redis_server.kill()
        await fault_delay(rng, 0.0, 0.3)
        env.redis_server.start()
        await fault_delay(rng, 0.5, 1.0)
    # Only: nothing hangs, the loss is reported, MongoDB never goes back.
    start = anyio.current_time()
    deadline = start + QUIET_WITHIN
    while busy := await env.oracle.group_quiet(env.redis):
        if anyio.current_time() > deadline:
            env.oracle.fail(PENDING, "; ".join(busy))
            env.oracle.raise_if_failed()
        await anyio.sleep(0.1)
    recovery = anyio.current_time() - start

    async def reported() -> bool:
        return worker.stats.group_recreated > 0

    while not await reported():
        if anyio.current_time() > deadline:
            env.oracle.fail(UNREPORTED, "the worker never counted a recreated group")
            break
        await anyio.sleep(0.1)
    await env.oracle.observe(env.db)
    for doc_id, (version, _) in before.items():
        now = env.oracle.history.get(doc_id)
        if now is None or now[0] < version:
            env.oracle.fail(STALE, f"{doc_id!r} was at {version}, now {now}")
    env.oracle.raise_if_failed()
    return recovery


async def memory_pressure(env: Env) -> float:
    """MongoDB down while Redis fills to maxmemory: dirty entries all stay, TTL-free; drain."""
    env.doc_pad = 2000
    await env.start_worker()
    await env.start_worker()
    async with env.load():
        await fault_delay(env.rng, 0.1, 0.5)
        env.mongo_server.stop()
        deadline = anyio.current_time() + 30
        while not any(c.outcome == "failed" for c in env.oracle.calls):
            if anyio.current_time() > deadline:
                raise AssertionError(f"{env.oracle.prefix()}: Redis never refused a write")
            await anyio.sleep(0.05)
        await fault_delay(env.rng, 0.1, 0.5)
    for c in env.oracle.calls:
        if c.outcome == "failed" and not (c.error or "").startswith("RedisOutOfMemory"):
            env.oracle.fail("unclear refusal", f"{c.doc_id!r}: {c.error}")
    # Every acknowledged write not yet in MongoDB is still there: the newest one
    # per document is its cache entry, with no TTL, and each record is in its stream.
    stored = dict(env.oracle.history)
    newest: dict[str, Call] = {}
    for c in env.oracle.calls:
        if c.outcome != "ack" or c.version is None:
            continue
        if c.doc_id not in newest or c.version > (newest[c.doc_id].version or c.version):
            newest[c.doc_id] = c
    keys = env.keys
    for doc_id, c in newest.items():
        assert c.version is not None
        if doc_id in stored and stored[doc_id][0] >= c.version:
            continue  # persisted before MongoDB stopped
        entry = keys.cache(keys.partition_of(COLLECTION, doc_id), COLLECTION, doc_id)
        v: Any = await env.redis.hget(entry, "v")
        ttl = await env.redis.ttl(entry)
        if v is None or v.decode() != str(c.version) or ttl != -1:
            env.oracle.fail(LOST, f"dirty entry {doc_id!r}: v={v!r} ttl={ttl}, wrote {c.version}")
    for p in range(PARTITIONS):
        entries: Any = await env.redis.xrange(keys.stream(p))
        ids = {eid.decode() for eid, _ in entries}
        for c in env.oracle.calls:
            mine = c.outcome == "ack" and keys.partition_of(COLLECTION, c.doc_id) == p
            if mine and str(c.version) not in ids:
                env.oracle.fail(LOST, f"record {c.version} of {c.doc_id!r} left the stream")
    env.oracle.raise_if_failed()
    env.mongo_server.start()
    return await env.settle()


NETWORK_MODES: list[Mode] = ["latency", "drop", "blackhole"]


async def network(env: Env) -> float:
    """A TCP proxy between the worker and MongoDB, the worker and Redis, the producers
    and Redis, or several of these.

    1-3 phases of latency, dropped connections or a blackhole (requests
    forwarded or not, replies never delivered), each healed back to ``pass``.
    The worker's MongoDB client times out a blackholed call in 2 s: its writes
    must be retried (transient), never dead-lettered. Its Redis client times
    out in 2 s: a read whose reply was lost leaves entries pending, which the
    claim loop takes back; an ack whose reply was lost is sent again. The
    producers' Redis client times out in 1 s: such a call is unknown, never
    acknowledged and lost (half the trials let the client re-send it twice first).
    """
    rng = env.rng
    links = ["mongo", "redis", "worker_redis"]
    where = rng.sample(links, rng.randint(1, len(links)))
    forward = rng.random() < 0.7
    proxies: dict[str, Proxy] = {}

    async def proxy_to(name: str, port: int) -> Proxy:
        proxy = Proxy("127.0.0.1", port, forward_in_blackhole=forward)
        proxy.latency = rng.uniform(0.005, 0.05)
        await env.tg.start(proxy.run)
        env.stack.callback(proxy.stop)
        proxies[name] = proxy
        return proxy

    db = None
    worker_redis = None
    if "mongo" in where:
        mongo_proxy = await proxy_to("mongo", env.mongo_server.port)
        client: AsyncMongoClient[Any] = AsyncMongoClient(
            f"mongodb://127.0.0.1:{mongo_proxy.port}/?socketTimeoutMS=2000"
            "&serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&directConnection=true",
            uuidRepresentation="standard",
            serverMonitoringMode="poll",
            heartbeatFrequencyMS=500,
        )
        env.stack.push_async_callback(client.close)
        db = client["faults"]
    if "worker_redis" in where:
        worker_proxy = await proxy_to("worker_redis", env.redis_server.port)
        worker_redis = connect(f"redis://127.0.0.1:{worker_proxy.port}/0", socket_timeout=2.0)
    if "redis" in where:
        redis_proxy = await proxy_to("redis", env.redis_server.port)
        env.producer_url = f"redis://127.0.0.1:{redis_proxy.port}/0"
        # Half the trials without client retries (the README's advice): a reply that
        # never arrives is unknown. The other half with them: a re-sent write script
        # returns its first result (the nonce) or, if another write came between,
        # writes again; either way what the caller is told must hold.
        # The retrying half uses what URL-made SDK clients get (redis_client.default_retry).
        # WRITEBEHIND_FAULT_CLIENT_RETRIES=on/off forces one half, to measure them apart.
        forced = os.environ.get("WRITEBEHIND_FAULT_CLIENT_RETRIES")
        retries = rng.random() < 0.5 if forced is None else forced == "on"
        env.extra["client_retries"] = retries
        env.producer_options = {
            "socket_timeout": 1.0,
            "socket_connect_timeout": 1.0,
            "retry": default_retry() if retries else Retry(NoBackoff(), 0),
        }
    worker = await env.start_worker(db=db, redis=worker_redis)
    phases: list[str] = []
    env.extra.update(where="+".join(sorted(where)), forward_in_blackhole=forward, phases=phases)
    async with env.load():
        for _ in range(rng.randint(1, 3)):
            await fault_delay(rng, 0.2, 0.6)
            mode = rng.choice(NETWORK_MODES)
            names = rng.sample(sorted(proxies), rng.randint(1, len(proxies)))
            targets = [proxies[name] for name in names]
            phases.append(f"{mode}:{'+'.join(names)}")
            for proxy in targets:
                proxy.set_mode(mode)
            try:
                # A blackhole lasts past the clients' timeouts (1 s, 2 s) at times, not always.
                low, high = (0.5, 2.5) if mode == "blackhole" else (0.3, 1.2)
                await fault_delay(rng, low, high)
            finally:
                for proxy in targets:
                    proxy.set_mode("pass")
        await fault_delay(rng, 0.2, 0.5)
    recovery = await env.settle()
    env.extra["retried"] = worker.stats.retried
    env.extra["claimed"] = worker.stats.claimed
    if worker.stats.dead_lettered:
        env.oracle.fail(DEAD_LETTER, f"{worker.stats.dead_lettered} records dead-lettered")
        env.oracle.raise_if_failed()
    return recovery


async def kill_after_write(env: Env) -> float:
    """Workers die right after a bulk_write returns, before acknowledging its records."""
    rng = env.rng
    async with env.load():
        for _ in range(rng.randint(2, 4)):
            # The next one claims what the last left pending (claim_idle = 1 s)
            # and writes it again: the version guard must make that a no-op.
            await env.crash("after_write", rng.randint(1, 15))
        await env.start_worker()
        await fault_delay(rng, 0.2, 0.5)
    return await env.settle()


DEAD_LETTER_POINTS = ["before_dead_letter", "during_dead_letter", "after_dead_letter"]


async def kill_in_dead_letter(env: Env) -> float:
    """Workers die around a dead-letter move: each poison record still lands there once."""
    rng = env.rng
    env.poison_rate = 0.3
    async with env.load():
        for _ in range(rng.randint(2, 3)):
            await env.crash(rng.choice(DEAD_LETTER_POINTS), rng.randint(1, 4))
        await env.start_worker()
        await fault_delay(rng, 0.2, 0.5)
    return await env.settle()


async def mongo_slow(env: Env) -> float:
    """MongoDB slow to answer: updates held for up to 1.5 s (past claim_idle), or the
    whole server stalled by SIGSTOP. Slow is not failed: nothing dead-lettered, nothing
    claimed away from a worker still writing it (and if it were, the guard holds)."""
    rng = env.rng
    workers = [await env.start_worker(), await env.start_worker()]
    admin = env.mongo.admin
    phases: list[str] = []
    env.extra["phases"] = phases
    async with env.load():
        for _ in range(rng.randint(1, 3)):
            await fault_delay(rng, 0.2, 0.6)
            if rng.random() < 0.5:
                block = rng.randint(100, 1500)
                phases.append(f"block:{block}ms")
                data = {"failCommands": ["update"], "blockConnection": True, "blockTimeMS": block}
                await _fail_point(admin, "alwaysOn", data)
                try:
                    await fault_delay(rng, 0.5, 2.0)
                finally:
                    await _fail_point(admin, "off", None)
            else:
                phases.append("stall")
                env.mongo_server.pause()
                try:
                    await fault_delay(rng, 0.3, 2.0)
                finally:
                    env.mongo_server.resume()
        await fault_delay(rng, 0.2, 0.5)
    recovery = await env.settle()
    dead = sum(w.stats.dead_lettered for w in workers)
    if dead:
        env.oracle.fail(DEAD_LETTER, f"{dead} records dead-lettered while MongoDB was slow")
        env.oracle.raise_if_failed()
    return recovery


def _rogue_record(env: Env, kind: str) -> tuple[str, dict[FieldT, EncodableT]]:
    """A record the SDK would never write, and the document id it names (for its partition)."""
    env.serial += 1
    doc_id = f"rogue-{env.serial}"
    body = bson_encode({"_id": doc_id, "s": "$set"})
    fields: dict[FieldT, EncodableT]
    if kind == "garbage_body":
        fields = {"op": "set", "c": COLLECTION, "d": b"\x05\x00not bson at all"}
    elif kind == "no_op":
        fields = {"c": COLLECTION, "d": body}
    elif kind == "unknown_op":
        fields = {"op": "upsert", "c": COLLECTION, "d": body}
    elif kind == "bad_version":
        fields = {"op": "set", "c": COLLECTION, "d": body, "ov": "yesterday"}
    elif kind == "no_id":
        fields = {"op": "set", "c": COLLECTION, "d": bson_encode({"s": "$$ROOT"})}
    elif kind == "bad_id":
        fields = {"op": "set", "c": COLLECTION, "d": bson_encode({"_id": 1.5})}
    elif kind == "bad_collection":
        name = env.rng.choice(["", "bad$name", "x\x00y", "system.rogue"])
        fields = {"op": env.rng.choice(["set", "del"]), "c": name, "d": body}
    elif kind == "validator":
        fields = {"op": "set", "c": COLLECTION, "d": bson_encode({"_id": doc_id, "age": "old"})}
    else:  # oversized: fits in Redis, not in MongoDB's 16 MiB
        big = bson_encode({"_id": doc_id, "pad": "x" * (16 * 1024 * 1024 + 100)})
        fields = {"op": "set", "c": COLLECTION, "d": big}
    return doc_id, fields


ROGUE_KINDS = [
    "garbage_body", "no_op", "unknown_op", "bad_version", "no_id", "bad_id",
    "bad_collection", "validator",
]  # fmt: skip


async def stream_poison(env: Env) -> float:
    """Records added to the streams past the SDK (another tool, an older version, a hand
    XADD): malformed, unwritable, oversized. Each is dead-lettered exactly once; the
    traffic around it lands; nothing wedges."""
    rng = env.rng
    await env.start_worker()
    kinds = [rng.choice(ROGUE_KINDS) for _ in range(rng.randint(3, 8))]
    if rng.random() < 0.3:
        kinds.insert(rng.randrange(len(kinds) + 1), "oversized")
    env.extra["injected"] = kinds
    async with env.load():
        for kind in kinds:
            await fault_delay(rng, 0.05, 0.4)
            doc_id, fields = _rogue_record(env, kind)
            stream = env.keys.stream(env.keys.partition_of(COLLECTION, doc_id))
            entry_id: Any = await env.redis.xadd(stream, fields)
            env.oracle.injected[entry_id.decode()] = kind
        await fault_delay(rng, 0.2, 0.5)
    return await env.settle()


async def redis_failover(env: Env) -> float:
    """The Redis primary is lost and its replica promoted, under load. Producers write
    with ``wait_replicas=1``: every write they were told succeeded is on the replica and
    must reach MongoDB; ``NotReplicated`` ones are unknown. The replica lags 10-50 ms
    behind. Clients reach Redis through a proxy that is pointed at the new primary, as
    a failover's address switch would."""
    rng = env.rng
    primary = env.redis_server
    # Replication goes through a proxy with latency, so the replica lags as a
    # remote one does: without the WAIT, a failover would lose acknowledged writes.
    link = Proxy("127.0.0.1", primary.port, latency=rng.uniform(0.01, 0.05))
    link.set_mode("latency")
    await env.tg.start(link.run)
    env.stack.callback(link.stop)
    replica = RedisServer("--replicaof", "127.0.0.1", str(link.port), appendonly=True)
    env.stack.callback(replica.close)
    replica.start()
    deadline = anyio.current_time() + 30
    while not await replica_online(env.redis):
        if anyio.current_time() > deadline:
            raise AssertionError(f"{env.oracle.prefix()}: the replica never came online")
        await anyio.sleep(0.05)
    proxy = Proxy("127.0.0.1", primary.port)
    await env.tg.start(proxy.run)
    env.stack.callback(proxy.stop)
    url = f"redis://127.0.0.1:{proxy.port}/0"
    env.producer_url = url
    env.producer_options = {"socket_timeout": 2.0, "retry": Retry(NoBackoff(), 0)}
    env.sdk_options = {"wait_replicas": 1, "wait_timeout": 0.5}
    await env.start_worker(redis=connect(url, socket_timeout=2.0))
    # MongoDB slowed, so the worker lags and recent writes live only in Redis,
    # as they do whenever there is a backlog.
    slow = {"failCommands": ["update"], "blockConnection": True, "blockTimeMS": 300}
    await _fail_point(env.mongo.admin, "alwaysOn", slow)
    async with env.load(producers=6):
        await fault_delay(rng, 1.0, 2.0)
        # The producers stop with the primary: a newer write after the failover
        # would cover a lost one and hide the loss.
        primary.kill()
    await fault_delay(rng, 0.0, 0.5)
    promoted = Redis.from_url(replica.url)
    env.stack.push_async_callback(promoted.aclose)
    await promoted.execute_command("REPLICAOF", "NO", "ONE")  # type: ignore[no-untyped-call]
    proxy.target_port = replica.port
    proxy.close_connections()
    env.redis = promoted  # the oracle reads Redis state from the new primary
    await _fail_point(env.mongo.admin, "off", None)
    return await env.settle()


TRIALS: dict[str, Callable[[Env], Awaitable[float]]] = {
    "kill9": kill9,
    "zombie": zombie,
    "mongo_restart": mongo_restart,
    "mongo_failcommand": mongo_failcommand,
    "poison": poison,
    "cancellation": cancellation,
    "redis_restart_aof": redis_restart_aof,
    "redis_restart_no_persistence": redis_restart_no_persistence,
    "memory_pressure": memory_pressure,
    "network": network,
    "kill_after_write": kill_after_write,
    "kill_in_dead_letter": kill_in_dead_letter,
    "mongo_slow": mongo_slow,
    "stream_poison": stream_poison,
    "redis_failover": redis_failover,
}


def redis_options(kind: str) -> tuple[list[str], bool]:
    if kind == "redis_restart_no_persistence":
        return [], False
    if kind == "memory_pressure":
        return ["--maxmemory", "4mb", "--maxmemory-policy", "volatile-lru"], True
    return [], True


CLUSTER_TRIALS = ("kill9", "kill_after_write", "poison")
"""The trial types that run on a Redis Cluster too: they fault the workers and MongoDB, not
Redis (the cluster's own failover is tests/integration/cluster/test_cluster_failover.py)."""


async def run_trial(
    kind: str, seed: int, workdir: Path, *, cluster: bool = False
) -> dict[str, Any]:
    """One trial of ``kind``; its figures, also appended to ``$WRITEBEHIND_FAULT_REPORT``.

    ``cluster``: on a local Redis Cluster (3 masters, 1 replica each) instead
    of one ``redis-server``; only the types of ``CLUSTER_TRIALS``.
    """
    if cluster and kind not in CLUSTER_TRIALS:
        raise ValueError(f"{kind} does not run on a cluster (CLUSTER_TRIALS)")
    rng = random.Random(seed)
    extra, appendonly = redis_options(kind)
    figures: dict[str, Any] = {"type": kind, "seed": seed, "cluster": cluster}
    oracle = Oracle(seed, kind, KeySpace(PREFIX, PARTITIONS))
    outcome: Exception | None = None
    try:
        async with AsyncExitStack() as stack:
            if cluster:
                local = LocalCluster()
                stack.callback(local.close)
                local.start()
                redis_server = local.nodes[0]
            else:
                redis_server = RedisServer(*extra, appendonly=appendonly)
                stack.callback(redis_server.close)
                redis_server.start()
            mongo_server = SecantusServer()
            stack.callback(mongo_server.close)
            mongo_server.start()
            url = redis_server.url
            redis = connect_cluster(url) if cluster else Redis.from_url(url)
            stack.push_async_callback(redis.aclose)
            mongo: AsyncMongoClient[Any] = AsyncMongoClient(
                mongo_server.url,
                uuidRepresentation="standard",
                serverMonitoringMode="poll",
                serverSelectionTimeoutMS=5000,
            )
            stack.push_async_callback(mongo.close)
            await _setup_collection(mongo["faults"])
            tg = await stack.enter_async_context(anyio.create_task_group())
            env = Env(kind, seed, workdir, rng, redis_server, mongo_server, redis, mongo, oracle,
                      stack, tg, cluster=cluster)  # fmt: skip

            def stop_workers() -> None:
                for worker in env.workers:
                    worker.request_stop()
                for proc in env.procs:
                    proc.send(signal.SIGCONT)
                    proc.close()

            stack.callback(stop_workers)
            tg.start_soon(oracle.monitor, env.db)
            try:
                with anyio.fail_after(180):
                    recovery = await TRIALS[kind](env)
                figures["recovery_s"] = round(recovery, 3)
                figures["dead_letters_expected"] = oracle.dead_letters_expected
                figures["dead_letters_found"] = oracle.dead_letters_found
                if env.workers:
                    figures["group_recreated"] = sum(w.stats.group_recreated for w in env.workers)
                figures.update(env.extra)
                oracle.raise_if_failed()
            except Exception as exc:
                # Kept here and raised after clean-up: cancelling the task group
                # with an exception in flight can swallow it.
                outcome = exc
            finally:
                tg.cancel_scope.cancel()
        if outcome is not None:
            raise outcome
        if "recovery_s" not in figures:
            raise AssertionError(f"{oracle.prefix()}: the trial ended without running the oracle")
    except AssertionError as exc:
        figures["error"] = str(exc)[:2000]
        raise
    except Exception as exc:
        figures["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        raise AssertionError(f"{oracle.prefix()}: the trial crashed: {exc!r}") from exc
    finally:
        figures.update({k: v for k, v in oracle.figures().items() if k not in figures})
        figures["ok"] = "error" not in figures
        report = os.environ.get("WRITEBEHIND_FAULT_REPORT")
        if report:
            with open(report, "a", encoding="utf-8") as out:  # noqa: ASYNC230 - one short line
                out.write(json.dumps(figures) + "\n")
    return figures
