"""Local mode: a pod's first container runs as a real subprocess on this machine.

The image is ignored; ``command`` + ``args`` run with the container's literal ``env`` values
added to the simulator's environment, in a new session so that deleting the pod can signal the
whole process group (SIGTERM, then SIGKILL after the grace period), as a container runtime
does. The last few KiB of output are kept, line by line, for ``logs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from podfleet.simulator.cluster.podlog import ContainerLog


def container_command(container: Mapping[str, Any]) -> list[str]:
    """``command`` + ``args`` of a container spec, as strings (empty → nothing to run)."""
    command = [str(part) for part in container.get("command") or []]
    args = [str(part) for part in container.get("args") or []]
    return command + args


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's ``env`` entries that carry a literal ``value`` (valueFrom is ignored)."""
    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        name = entry.get("name")
        if isinstance(name, str) and "value" in entry:
            env[name] = str(entry["value"])
    return env


class LocalContainer:
    """One running subprocess; ``on_exit(exit_code)`` is called once, on the loop, when it ends."""

    def __init__(self, log_bytes: int) -> None:
        self._process: asyncio.subprocess.Process | None = None
        #: Combined stdout and stderr, line by line with when each was written.
        self.output = ContainerLog(log_bytes)
        self._tasks: list[asyncio.Task[None]] = []
        self._killer: asyncio.TimerHandle | None = None
        #: Wall-clock time the process was started (a termination message must be newer).
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def logs(self) -> bytes:
        """The tail of the container's combined stdout and stderr."""
        return self.output.data()

    async def start(
        self, argv: list[str], env: Mapping[str, str], on_exit: Callable[[int], None]
    ) -> None:
        """Start ``argv``; raises OSError when it cannot be started (not found, not executable)."""
        self.started_at = time.time()
        self._process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
        self._tasks.append(asyncio.ensure_future(self._wait(on_exit)))

    async def _wait(self, on_exit: Callable[[int], None]) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        while chunk := await process.stdout.read(4096):
            self.output.write(chunk)
        self.output.close()
        code = await process.wait()
        if self._killer is not None:
            self._killer.cancel()
        # A signal's death is reported by runtimes as 128 + signal number.
        on_exit(128 - code if code < 0 else code)

    def _signal(self, sig: int) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def terminate(self, grace_s: float) -> None:
        """SIGTERM the process group now, SIGKILL it after ``grace_s`` if still alive."""
        self._signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        if self._killer is None:
            self._killer = loop.call_later(max(0.0, grace_s), self._signal, signal.SIGKILL)

    async def kill(self) -> None:
        """SIGKILL at once and wait for the process to be reaped (used on shutdown)."""
        self._signal(signal.SIGKILL)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
