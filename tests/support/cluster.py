"""A local Redis Cluster for tests: 3 masters with one replica each, on free ports.

Six ``redis-server --cluster-enabled yes`` processes (each a ``RedisServer``,
so a test can kill, freeze or restart one), joined with ``redis-cli --cluster
create --cluster-replicas 1 --cluster-yes``. Each node also listens on its
cluster bus port (its port + 10000), so ports are picked where both are free
and the bus port fits in 16 bits.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence

from redis import Redis as SyncRedis

from writebehind.embedded.servers import RedisServer

MASTERS = 3
REPLICAS_PER_MASTER = 1
BUS_OFFSET = 10_000
CLUSTER_PARTITIONS = 12
"""The cluster tests' partition count: enough that every master holds some."""


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(1000):
        port = random.randint(20_000, 50_000)
        if port in taken or port + BUS_OFFSET in taken:
            continue
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """Six nodes, 16384 slots over 3 masters; ``url`` names one node (any node will do)."""

    def __init__(self, node_timeout_ms: int = 2000) -> None:
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout: float = 60.0) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (Debian package redis-tools)")
        taken: set[int] = set()
        try:
            for _ in range(MASTERS * (1 + REPLICAS_PER_MASTER)):
                port = cluster_port(taken)
                taken.update((port, port + BUS_OFFSET))
                node = RedisServer(
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                    port=port,
                )  # fmt: skip
                node.start()
                self.nodes.append(node)
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [cli, "--cluster", "create", *addresses,
                 "--cluster-replicas", str(REPLICAS_PER_MASTER), "--cluster-yes"],
                check=True, capture_output=True, timeout=timeout,
            )  # fmt: skip
            self.wait_ready(timeout)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _info(node: RedisServer, section: str) -> dict[str, str]:
        """``CLUSTER INFO`` (section ``cluster``) or an ``INFO`` section, as text pairs."""
        with SyncRedis(port=node.port, socket_timeout=2) as client:
            if section != "cluster":
                return {k: str(v) for k, v in client.info(section).items()}
            raw = client.execute_command("CLUSTER", "INFO")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {k: v.strip() for k, v in pairs}

    def wait_ready(self, timeout: float = 60.0, skip: Sequence[RedisServer] = ()) -> None:
        """Every node (but ``skip``: killed ones) sees state ok and all slots, replicas in sync."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(self._ready(node) for node in self.nodes if node not in skip):
                    return
            except OSError:
                pass
            except Exception as exc:  # a node still loading answers with an error reply
                if "LOADING" not in str(exc) and "CLUSTERDOWN" not in str(exc):
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not become ready in time")
            time.sleep(0.1)

    def _ready(self, node: RedisServer) -> bool:
        info = self._info(node, "cluster")
        if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
            return False
        replication = self._info(node, "replication")
        if replication.get("role") == "slave":
            return replication.get("master_link_status") == "up"
        return True

    def masters(self) -> list[RedisServer]:
        """The nodes that are masters now (after a failover, a former replica may be one)."""
        alive = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        return [n for n in alive if self._info(n, "replication").get("role") == "master"]

    def replica_of(self, master_port: int) -> RedisServer:
        """The node replicating the master on ``master_port`` (its first replica)."""
        [master] = [n for n in self.nodes if n.port == master_port]
        with SyncRedis(port=master.port, socket_timeout=2) as client:
            replica = client.info("replication")["slave0"]
        [node] = [n for n in self.nodes if n.port == int(replica["port"])]
        return node

    def flushall(self) -> None:
        """Empty every master (replicas follow), and every node's script cache."""
        for node in self.masters():
            with SyncRedis(port=node.port, socket_timeout=5) as client:
                client.flushall()

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.nodes.clear()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
