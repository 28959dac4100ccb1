"""A private Redis Sentinel group: a primary, a replica and sentinels on free loopback ports.

Used by tests and the chaos run to fail a Redis primary over for real: ``redis-server
--sentinel`` (the ``redis-sentinel`` command is the same binary) monitors the primary, and when
it is SIGKILLed the sentinels agree it is down and promote the replica. Clients reach the group
through :attr:`SentinelGroup.url`, a ``redis+sentinel://`` URL (``podfleet.redis_client``).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from podfleet.local.ports import free_port, wait_for_port
from podfleet.local.redis_server import RedisServer, RedisServerError

SERVICE_NAME = "podfleet"


class SentinelGroup:
    """A primary, one replica and ``sentinels`` sentinels (a majority of them is the quorum).

    ``down_after_ms``: how long the primary must not answer before a sentinel calls it down;
    short here, so a failover takes seconds.
    """

    def __init__(self, sentinels: int = 3, *, down_after_ms: int = 1000,
                 host: str = "127.0.0.1") -> None:
        self.host = host
        self.down_after_ms = down_after_ms
        self.primary = RedisServer(host=host, appendonly=True)
        self.replica = RedisServer(host=host, appendonly=True, extra_args=(
            "--replicaof", host, str(self.primary.port)))
        self.sentinel_ports = [free_port(host) for _ in range(sentinels)]
        self._dir = Path(tempfile.mkdtemp(prefix="podfleet-sentinel-"))
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"{self.host}:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE_NAME}/0"

    def start(self, timeout: float = 20.0) -> SentinelGroup:
        self.primary.start()
        self.replica.start()
        quorum = len(self.sentinel_ports) // 2 + 1
        for n, port in enumerate(self.sentinel_ports):
            config = self._dir / f"sentinel-{n}.conf"  # sentinels rewrite their own config
            config.write_text(
                f"port {port}\nbind {self.host}\ndaemonize no\nprotected-mode no\n"
                f"dir {self._dir}\nloglevel warning\n"
                f"sentinel monitor {SERVICE_NAME} {self.host} {self.primary.port} {quorum}\n"
                f"sentinel down-after-milliseconds {SERVICE_NAME} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE_NAME} 10000\n"
                f"sentinel parallel-syncs {SERVICE_NAME} 1\n")
            self._sentinels.append(subprocess.Popen(
                [self.primary.executable, str(config), "--sentinel"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            for port in self.sentinel_ports:
                wait_for_port(self.host, port, timeout)
            self._wait(self._replica_in_sync, timeout, "the replica to sync")
        except (TimeoutError, RedisServerError):
            self.close()
            raise
        return self

    def primary_address(self) -> tuple[str, int] | None:
        """The primary the first answering sentinel names."""
        for port in self.sentinel_ports:
            client = redis.Redis(host=self.host, port=port, socket_timeout=1)
            try:
                found = client.sentinel_get_master_addr_by_name(SERVICE_NAME)
            except redis.RedisError:
                continue
            finally:
                client.close()
            if isinstance(found, tuple | list) and found:
                host = found[0].decode() if isinstance(found[0], bytes) else str(found[0])
                return host, int(found[1])
        return None

    def kill_primary(self) -> None:
        """SIGKILL the primary, as a crashed machine."""
        self.primary.kill()

    def wait_for_failover(self, timeout: float = 30.0) -> tuple[str, int]:
        """Wait until the sentinels name the replica as primary and it accepts writes."""
        wanted = (self.host, self.replica.port)

        def promoted() -> bool:
            return self.primary_address() == wanted and _is_primary(wanted)

        self._wait(promoted, timeout, "the sentinels to promote the replica")
        return wanted

    def fail_over(self, timeout: float = 30.0) -> tuple[str, int]:
        """``SENTINEL FAILOVER``: the sentinels promote the replica and demote the primary to a
        replica of it, so clients still connected to the old primary get ``READONLY`` on their
        next write. Waits first until the replica has caught up with the primary (Sentinel
        itself would promote a replica still in its first full sync, such as a primary just
        back from a crash, and so throw away every write made since that crash); returns the
        new primary's address once it accepts writes."""
        before = self.primary_address()
        deadline = time.monotonic() + timeout
        self._wait(self._replica_caught_up, timeout, "the replica to catch up")
        sentinel = redis.Redis(host=self.host, port=self.sentinel_ports[0], socket_timeout=2)
        try:
            while True:
                try:  # NOGOODSLAVE until the replica is in sync; INPROG while one runs
                    sentinel.execute_command(  # type: ignore[no-untyped-call]
                        "SENTINEL", "FAILOVER", SERVICE_NAME)
                    break
                except redis.ResponseError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            sentinel.close()

        def moved() -> bool:
            address = self.primary_address()
            return address is not None and address != before and _is_primary(address)

        self._wait(moved, max(1.0, deadline - time.monotonic()), "the failover")
        address = self.primary_address()
        assert address is not None
        return address

    def _replica_caught_up(self) -> bool:
        """The server that is not the primary replicates it, its link up, and holds at least
        what the primary had written when asked."""
        primary = self.primary_address()
        if primary is None:
            return False
        replica_port = (self.replica.port if primary[1] == self.primary.port
                        else self.primary.port)
        clients = [redis.Redis(host=self.host, port=port, socket_timeout=1)
                   for port in (primary[1], replica_port)]
        try:
            written = int(clients[0].info("replication").get("master_repl_offset", 0))
            info = clients[1].info("replication")
        except redis.RedisError:
            return False
        finally:
            for client in clients:
                client.close()
        return (info.get("role") == "slave" and info.get("master_link_status") == "up"
                and int(info.get("slave_repl_offset", -1)) >= written)

    def _replica_in_sync(self) -> bool:
        client = redis.Redis(host=self.host, port=self.replica.port, socket_timeout=1)
        try:
            info = client.info("replication")
        except redis.RedisError:
            return False
        finally:
            client.close()
        return info.get("master_link_status") == "up" and self.primary_address() is not None

    @staticmethod
    def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.1)

    def close(self) -> None:
        for process in self._sentinels:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._sentinels:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._sentinels.clear()
        self.replica.close()
        self.primary.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_primary(address: tuple[str, int]) -> bool:
    """Whether the Redis at ``address`` answers that it is a primary (and so takes writes)."""
    client = redis.Redis(host=address[0], port=address[1], socket_timeout=1)
    try:
        return bool(client.info("replication").get("role") == "master")
    except redis.RedisError:
        return False
    finally:
        client.close()
