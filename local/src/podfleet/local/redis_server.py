"""A private ``redis-server`` process on a free loopback port.

Used by ``podfleet demo`` when no PODFLEET_REDIS_URL is given, and by tests that kill and
restart Redis to prove nothing is lost. It keeps nothing on disk (no RDB, no AOF), like a cache
node that lost its memory, which is exactly what a restart test needs to simulate.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from podfleet.local.ports import free_port, wait_for_port


class RedisServerError(RuntimeError):
    """redis-server is missing or did not start."""


class RedisServer:
    """Start, kill and restart one private redis-server; the port stays the same across restarts."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 executable: str | None = None, *, appendonly: bool = False,
                 extra_args: Sequence[str] = ()) -> None:
        """``appendonly``: keep an AOF (fsync every second), so a restart after SIGKILL comes
        back with the data, as a production Redis does; otherwise it comes back empty.
        ``extra_args`` are more ``redis-server`` options (``--replicaof host port``)."""
        self.appendonly = appendonly
        self.extra_args = tuple(extra_args)
        self.host = host
        self.port = port or free_port(host)
        found = executable or shutil.which("redis-server")
        if not found:
            raise RedisServerError(
                "redis-server is not installed (Debian: apt-get install redis-server), or set "
                "PODFLEET_REDIS_URL to a Redis you run")
        self.executable: str = found
        self._dir = Path(tempfile.mkdtemp(prefix="podfleet-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The running server's process id (benchmarks count its CPU), None when stopped."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.running:
            return self
        self._process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", self.host,
             "--save", "", "--appendonly", "yes" if self.appendonly else "no",
             "--appendfsync", "everysec", "--dir", str(self._dir),
             "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
             "--maxclients", "4000", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.host, self.port, timeout)
        except TimeoutError:
            self.kill()
            raise RedisServerError(f"redis-server did not start on port {self.port}") from None
        return self

    def kill(self) -> None:
        """SIGKILL: everything in memory is gone, as in a crash."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
