"""``writebehind demo``: the whole system on embedded servers, attacked and then verified.

Producers write a skewed (Zipfian) workload through the SDK while a pool of
worker processes drains it; part-way one worker is killed with SIGKILL and
MongoDB is stopped for a few seconds. Then everything drains, and MongoDB
must hold exactly the newest acknowledged version of every document.

Against servers of your own (``WRITEBEHIND_REDIS_URL`` / ``WRITEBEHIND_MONGO_URL``)
it uses a key prefix and a database of its own for the run, removes both at the
end (unless ``--keep``), and does not stop a MongoDB it did not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import click
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from writebehind.cli.failures import UsageProblem, mongo_reason, scrub
from writebehind.core.errors import BacklogFull
from writebehind.core.keys import KeySpace
from writebehind.core.redis_client import connect
from writebehind.core.version import Version
from writebehind.embedded.demo_cleanup import Events, leave_servers
from writebehind.embedded.servers import RedisServer, SecantusServer, free_port
from writebehind.observability.logs import redact_url
from writebehind.sdk.client import DEFAULT_GROUP, WriteBehind
from writebehind.tools.stream_stats import collect

PARTITIONS = 8
USERS_SERVER_WAIT = 5.0
"""Seconds a server of the user's (``WRITEBEHIND_*_URL``) gets to answer before the demo starts."""


@dataclass
class Ledger:
    """What the producers were told: the newest acknowledged version of each document."""

    newest: dict[int, tuple[Version, dict[str, Any] | None]] = field(default_factory=dict)
    acknowledged: int = 0
    refused: int = 0

    def record(self, doc_id: int, version: Version, doc: dict[str, Any] | None) -> None:
        self.acknowledged += 1
        current = self.newest.get(doc_id)
        if current is None or version > current[0]:
            self.newest[doc_id] = (version, doc)


def zipf_sampler(n: int, s: float, rng: random.Random) -> Iterator[int]:
    weights = list(itertools.accumulate(1 / (rank**s) for rank in range(1, n + 1)))
    while True:
        yield rng.choices(range(n), cum_weights=weights)[0]


@dataclass
class Servers:
    redis_url: str
    mongo_url: str
    mongo: SecantusServer | None
    """The MongoDB the demo started (None: the user's, from WRITEBEHIND_MONGO_URL)."""
    stack: contextlib.ExitStack
    users_redis: bool = False
    """True when the Redis is the user's (WRITEBEHIND_REDIS_URL)."""

    @property
    def users(self) -> bool:
        """Any server of the user's, where the run must clean up after itself."""
        return self.users_redis or self.mongo is None


def start_servers(workdir: Path) -> Servers:
    """The user's servers (``WRITEBEHIND_*_URL``), else embedded ones, started here; a
    failure stops those already started."""
    stack = contextlib.ExitStack()
    try:
        return _start_servers(workdir, stack)
    except BaseException:
        stack.close()
        raise


def _start_servers(workdir: Path, stack: contextlib.ExitStack) -> Servers:
    redis_url = os.environ.get("WRITEBEHIND_REDIS_URL")
    mongo_url = os.environ.get("WRITEBEHIND_MONGO_URL")
    mongo: SecantusServer | None = None
    if not redis_url:
        redis = RedisServer(
            "--appendfsync", "everysec", appendonly=True, workdir=_dir(workdir, "r")
        )
        stack.callback(redis.close)
        redis.start()
        redis_url = redis.url
    if not mongo_url:
        mongo = SecantusServer(workdir=_dir(workdir, "m"))
        stack.callback(mongo.close)
        mongo.start()
        mongo_url = mongo.url
    return Servers(
        redis_url,
        mongo_url,
        mongo,
        stack,
        users_redis=bool(os.environ.get("WRITEBEHIND_REDIS_URL")),
    )


def _dir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


class WorkerPool:
    """Worker processes running ``writebehind worker``; each logs to its own file."""

    def __init__(self, servers: Servers, database: str, workdir: Path, prefix: str) -> None:
        self.servers = servers
        self.database = database
        self.prefix = prefix
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.last_seen: dict[int, dict[str, float]] = {}
        """Each worker's counters as last scraped (a killed worker keeps its last figures)."""

    def start(self) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        port = free_port()
        self.ports.append(port)
        log = (self.workdir / f"worker-{n}.log").open("ab")
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "writebehind.cli", "worker",
                "--redis-url", self.servers.redis_url,
                "--mongo-url", self.servers.mongo_url,
                "--database", self.database,
                "--prefix", self.prefix, "--partitions", str(PARTITIONS),
                "--consumer", f"demo-worker-{n}",
                "--claim-idle", "2s", "--drain-timeout", "10s",
                "--metrics-address", f"127.0.0.1:{port}",
                "--log-format", "json",
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self.procs.append(proc)
        return proc

    def alive(self) -> int:
        return sum(1 for p in self.procs if p.poll() is None)

    async def counters(self) -> dict[str, float]:
        """Persisted, coalesced and retried records, summed over the workers' /metrics."""
        for n, (proc, port) in enumerate(zip(self.procs, self.ports, strict=True)):
            if proc.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    self.last_seen[n] = await scrape(port, COUNTERS)
        return {
            name: sum(seen.get(name, 0.0) for seen in self.last_seen.values()) for name in COUNTERS
        }

    def stop_all(self) -> list[int | None]:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(20))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes


COUNTERS = (
    "writebehind_records_persisted_total",
    "writebehind_records_coalesced_total",
    "writebehind_records_retried_total",
)


async def scrape(port: int, names: tuple[str, ...]) -> dict[str, float]:
    """Read a few unlabelled samples from a worker's /metrics."""
    with anyio.fail_after(1):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"GET /metrics HTTP/1.1\r\nHost: demo\r\n\r\n")
            data = b""
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    data += await stream.receive()
    values = {}
    for line in data.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            values[name] = float(value)
    return values


async def backlog(redis: Redis, prefix: str) -> int:
    """Records not yet persisted: pending plus undelivered, over every partition."""
    stats = await collect(redis, KeySpace(prefix, PARTITIONS), DEFAULT_GROUP)
    return stats.pending + stats.lag


async def write_one(users: Any, ledger: Ledger, rng: random.Random, doc_id: int) -> None:
    """One write of the mix: 8% deletes, 32% read-modify-writes, 60% full sets."""
    roll = rng.random()
    if roll < 0.08:
        ledger.record(doc_id, await users.delete(doc_id), None)
        return
    if roll < 0.4:
        written: list[dict[str, Any]] = []

        def bump(doc: dict[str, Any] | None) -> dict[str, Any]:
            new = {**(doc or {"balance": 0}), "touched": rng.random()}
            new["balance"] = new.get("balance", 0) + 1
            written.append(new)
            return new

        version = await users.modify(doc_id, bump)
        # modify may call bump again after a conflict; the last result is what was written.
        ledger.record(doc_id, version, {"_id": doc_id, **written[-1]})
        return
    doc = {"balance": rng.randint(0, 10**6), "note": "$not-an-operator"}
    ledger.record(doc_id, await users.set(doc_id, doc), {"_id": doc_id, **doc})


async def run_demo(
    duration: float,
    producers: int,
    documents: int,
    workers: int,
    seed: int,
    live: bool,
    keep: bool = False,
) -> bool:
    await check_users_servers(
        os.environ.get("WRITEBEHIND_REDIS_URL"), os.environ.get("WRITEBEHIND_MONGO_URL")
    )
    workdir = Path(tempfile.mkdtemp(prefix="writebehind-demo-"))
    with _sigterm_cancels_the_demo() as terminated:
        try:
            return await _run_in(workdir, duration, producers, documents, workers, seed, live, keep)
        except BaseException:
            _after_a_failure(workdir)
            if terminated():
                raise KeyboardInterrupt("SIGTERM") from None  # exit status 130, as Ctrl-C
            raise


@contextlib.contextmanager
def _sigterm_cancels_the_demo() -> Iterator[Callable[[], bool]]:
    """SIGTERM (``kill``, a CI timeout, ``docker stop``) cancels the demo's main task, as
    asyncio does on Ctrl-C, so that its clean-up stops the workers and servers it started.

    A handler raising ``KeyboardInterrupt`` instead could land in any task (a Redis call's
    shielded task, say): the event loop stopped there, the main task's clean-up never ran,
    and two workers, redis-server and SecantusDB were left running. Yields whether SIGTERM
    came."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    came: list[bool] = []

    def cancel() -> None:
        came.append(True)
        if main is not None:
            main.cancel()

    loop.add_signal_handler(signal.SIGTERM, cancel)
    try:
        yield lambda: bool(came)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _after_a_failure(workdir: Path) -> None:
    """The log folder of a run that failed: kept and named if a worker logged, else removed."""
    if any(workdir.iterdir()):
        click.echo(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


async def check_users_servers(redis_url: str | None, mongo_url: str | None) -> None:
    """Check the servers of the user's the demo was pointed at, before it writes anything.

    Raises ``UsageProblem`` (exit status 2) for a URL the driver refuses, naming the
    variable, and ``click.ClickException`` (exit status 1) naming a server that does
    not answer within ``USERS_SERVER_WAIT`` seconds.
    """
    if redis_url:
        try:
            redis = connect(redis_url)
        except (ValueError, TypeError) as exc:
            raise UsageProblem(f"WRITEBEHIND_REDIS_URL: {scrub(str(exc), redis_url)}") from None
        try:
            with anyio.fail_after(USERS_SERVER_WAIT):
                await redis.ping()
        except (RedisError, TimeoutError, OSError) as exc:
            reason = scrub(f"{type(exc).__name__}: {exc}", redis_url)
            raise click.ClickException(f"Redis ({redact_url(redis_url)}): {reason}") from None
        finally:
            await redis.aclose()
    if mongo_url:
        wait_ms = int(USERS_SERVER_WAIT * 1000)
        try:
            mongo: AsyncMongoClient[Any] = AsyncMongoClient(
                mongo_url, serverSelectionTimeoutMS=wait_ms
            )
        except (PyMongoError, ValueError, TypeError) as exc:
            raise UsageProblem(f"WRITEBEHIND_MONGO_URL: {scrub(str(exc), mongo_url)}") from None
        try:
            await mongo.admin.command("ping")
        except PyMongoError as exc:
            reason = scrub(mongo_reason(exc), mongo_url)
            raise click.ClickException(f"MongoDB ({redact_url(mongo_url)}): {reason}") from None
        finally:
            await mongo.close()


async def _run_in(
    workdir: Path,
    duration: float,
    producers: int,
    documents: int,
    workers: int,
    seed: int,
    live: bool,
    keep: bool,
) -> bool:
    servers = start_servers(workdir)
    run = f"demo_{int(time.time())}_{os.getpid()}"
    database, prefix = run, run.replace("_", "-")
    pool = WorkerPool(servers, database, workdir, prefix)
    say = click.echo
    say(f"redis   {redact_url(servers.redis_url)}  key prefix {prefix}")
    say(f"mongodb {redact_url(servers.mongo_url)}  database {database}")
    say(f"logs    {workdir} (kept only if verification fails)")
    if servers.mongo is None:
        say(
            "skipped: stopping MongoDB part-way (WRITEBEHIND_MONGO_URL is set: the demo "
            "does not stop a server it did not start)"
        )
    ledger = Ledger()
    rng = random.Random(seed)
    try:
        mongo_client: AsyncMongoClient[Any] = AsyncMongoClient(
            servers.mongo_url, uuidRepresentation="standard"
        )
        redis = connect(servers.redis_url)
    except BaseException:
        servers.stack.close()  # the servers it started: never left running
        raise
    events = Events()
    done = False
    codes: list[int | None] = []
    mismatches: list[str] = []
    try:
        async with WriteBehind(
            redis=redis, mongo=mongo_client[database], prefix=prefix, partitions=PARTITIONS,
            backlog_wait=5.0,
        ) as wb:  # fmt: skip
            for _ in range(workers):
                pool.start()
            users = wb.collection("accounts")
            stop_at = anyio.current_time() + duration

            async def produce(worker_seed: int) -> None:
                local = random.Random(worker_seed)
                picks = zipf_sampler(documents, 1.1, local)
                while anyio.current_time() < stop_at:
                    try:
                        await write_one(users, ledger, local, next(picks))
                    except BacklogFull:
                        ledger.refused += 1

            async def chaos() -> None:
                await anyio.sleep(duration * 0.3)
                victim = pool.procs[0]
                victim.kill()
                events.append("killed worker-0 with SIGKILL")
                pool.start()
                events.append("started a replacement worker")
                if servers.mongo is not None:
                    await anyio.sleep(duration * 0.1)
                    servers.mongo.stop()
                    events.append("stopped MongoDB")
                    await anyio.sleep(min(4.0, duration * 0.2))
                    servers.mongo.start()
                    events.append("restarted MongoDB")
                else:
                    events.append("skipped stopping MongoDB (yours, not the demo's)")

            async def view() -> None:
                started = anyio.current_time()
                while True:
                    lag = await backlog(redis, prefix)
                    c = await pool.counters()
                    line = (
                        f"t={anyio.current_time() - started:5.1f}s  "
                        f"acked={ledger.acknowledged:6d}  "
                        f"persisted={c['writebehind_records_persisted_total']:6.0f}  "
                        f"lag={lag:5d}  "
                        f"coalesced={c['writebehind_records_coalesced_total']:6.0f}  "
                        f"retried={c['writebehind_records_retried_total']:5.0f}  "
                        f"workers={pool.alive()}  {events.new()}"
                    ).rstrip()
                    if live:
                        click.echo("\r" + line.ljust(130), nl=False)
                    else:
                        click.echo(line)
                    await anyio.sleep(0.5 if live else 2.0)

            async with anyio.create_task_group() as tg:
                tg.start_soon(view)
                async with anyio.create_task_group() as load:
                    for _ in range(producers):
                        load.start_soon(produce, rng.randrange(2**32))
                    load.start_soon(chaos)
                events.append("producers done; draining")
                with anyio.fail_after(120):
                    while await backlog(redis, prefix) > 0:  # noqa: ASYNC110 - another process
                        await anyio.sleep(0.2)
                tg.cancel_scope.cancel()
            if live:
                click.echo()
            codes = pool.stop_all()
            mismatches = await verify(mongo_client[database]["accounts"], ledger)
            done = not mismatches
    finally:
        for proc in pool.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            with anyio.CancelScope(shield=True):  # a cancelled demo (SIGTERM) cleans up too
                if servers.users:
                    await leave_servers(
                        redis if servers.users_redis else None,
                        mongo_client if servers.mongo is None else None,
                        prefix,
                        database,
                        keep=keep or not done,
                    )
                await redis.aclose()
                await mongo_client.close()
        finally:
            servers.stack.close()
    for event in events.all:
        say(f"  - {event}")
    say(f"documents written     {len(ledger.newest)}")
    say(f"writes acknowledged   {ledger.acknowledged}")
    say(f"writes refused        {ledger.refused} (backpressure)")
    say(f"worker exit codes     {codes}")
    if mismatches:
        say(f"FAILED: {len(mismatches)} documents differ from their newest acknowledged write:")
        for line in mismatches[:10]:
            say(f"  {line}")
        say(f"worker logs kept in {workdir}")
        return False
    say("verified: MongoDB holds exactly the newest acknowledged version of every document")
    shutil.rmtree(workdir, ignore_errors=True)
    say(f"removed the logs in {workdir}")
    return True


async def verify(collection: Any, ledger: Ledger) -> list[str]:
    stored = {doc["_id"]: doc async for doc in collection.find({})}
    problems = []
    for doc_id, (version, expected) in sorted(ledger.newest.items()):
        doc = stored.get(doc_id)
        if doc is None:
            problems.append(f"{doc_id}: missing (expected {version})")
            continue
        meta = doc.pop("_wb", {})
        if meta.get("v") != version.as_pair():
            problems.append(f"{doc_id}: at {meta.get('v')}, expected {version}")
        elif expected is None and not meta.get("deleted"):
            problems.append(f"{doc_id}: expected deleted at {version}")
        elif expected is not None and doc != expected:
            problems.append(f"{doc_id}: content {doc} != {expected}")
    return problems


@click.command()
@click.option(
    "--duration",
    default=12.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds of load.",
)
@click.option("--producers", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--documents", default=500, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--keep", is_flag=True,
    help="On servers of your own: keep the run's keys and database for a look.",
)  # fmt: skip
def demo(
    duration: float, producers: int, documents: int, workers: int, seed: int, keep: bool
) -> None:
    """Run the whole system on embedded servers, crash parts of it, and verify the result.

    Uses WRITEBEHIND_REDIS_URL / WRITEBEHIND_MONGO_URL when set, else starts a
    private redis-server and SecantusDB in a temp dir. On servers of your own it
    writes under a key prefix and a database of its own (demo-<time>-<pid>),
    removes both at the end unless --keep, and skips stopping MongoDB. Ctrl-C or
    SIGTERM stops its workers and servers and exits 130.
    """
    live = sys.stdout.isatty()
    ok = anyio.run(run_demo, duration, producers, documents, workers, seed, live, keep)
    sys.exit(0 if ok else 1)
