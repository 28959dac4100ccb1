"""Start and stop a simulator from Python: in a thread of this process, or as a subprocess.

Thread mode is quick and lets a test reach the runtime (store, stats) directly. Process mode
runs `python -m podfleet.simulator` so the simulator has its own interpreter and GIL, which is
what tests of the whole pipeline and benchmarks need. Either way the caller gets a URL, a
configured `kubernetes.client.ApiClient`, a kubeconfig writer and the admin client, and `stop()`
leaves no thread or process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from podfleet.simulator.admin import AdminClient
from podfleet.simulator.app import bind_socket, serve, url_of
from podfleet.simulator.config import SimulatorConfig, config_to_json
from podfleet.simulator.kubeconfig import DEFAULT_TOKEN, write_kubeconfig

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from podfleet.simulator.runtime import SimulatorRuntime

READY_PREFIX = "podfleet simulator serving at "
_START_TIMEOUT_S = 30.0


class RunningSimulator:
    """A started simulator. Use as a context manager, or call `stop()`."""

    def __init__(self, url: str, config: SimulatorConfig) -> None:
        self.url = url
        self.config = config
        self.admin = AdminClient(url, token=config.token)

    @property
    def token(self) -> str:
        return self.config.token or DEFAULT_TOKEN

    def api_client(self) -> ApiClient:
        """A new official-client ApiClient pointed at this simulator (close it when done)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.api_key = {"authorization": self.token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        """Write a kubeconfig for this simulator (kubectl and load_kube_config accept it)."""
        return write_kubeconfig(path, self.url, token=self.token)

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadSimulator(RunningSimulator):
    """A simulator serving from its own event loop in a daemon thread of this process."""

    def __init__(self, config: SimulatorConfig) -> None:
        sock = bind_socket(config.host, config.port)
        super().__init__(url_of(sock), config)
        self.runtime: SimulatorRuntime | None = None
        self._loop = asyncio.new_event_loop()
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="podfleet-simulator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("the simulator did not start in time")
        if self._error is not None:
            self._thread.join(5)
            raise RuntimeError("the simulator failed to start") from self._error

    def _run(self, sock: Any) -> None:
        asyncio.set_event_loop(self._loop)

        def ready(runtime: SimulatorRuntime) -> None:
            self.runtime = runtime
            self._ready.set()

        async def main() -> None:
            self._stop_event = asyncio.Event()
            await serve(self.config, sock, self._stop_event, ready)

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            sock.close()

    def call(self, function: Any, *args: Any) -> Any:
        """Run `function(*args)` on the simulator's loop and return its result (for tests)."""

        async def run() -> Any:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        stop_event = self._stop_event
        if stop_event is not None:
            self._loop.call_soon_threadsafe(stop_event.set)
        self._thread.join(15)


class ProcessSimulator(RunningSimulator):
    """A simulator in a child `python -m podfleet.simulator` process."""

    def __init__(self, config: SimulatorConfig) -> None:
        # The config goes through stdin, not argv: it may hold the API token.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "podfleet.simulator", "--config-json", "-"],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(config_to_json(config).decode())
        self.process.stdin.close()
        try:
            url = self._wait_ready()
        except BaseException:
            self._terminate()
            raise
        super().__init__(url, config)

    def _wait_ready(self) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                line = self.process.stdout.readline()
                if not line:
                    raise RuntimeError(
                        f"the simulator process exited with code {self.process.wait()}"
                    )
                if line.startswith(READY_PREFIX):
                    return line[len(READY_PREFIX) :].strip()
        raise RuntimeError("the simulator process did not become ready in time")

    def _terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self) -> None:
        self._terminate()


def start_simulator(
    config: SimulatorConfig | None = None, *, mode: Literal["thread", "process"] = "thread"
) -> RunningSimulator:
    """Start a simulator and return once it answers requests."""
    config = config or SimulatorConfig()
    if mode == "thread":
        return ThreadSimulator(config)
    if mode == "process":
        return ProcessSimulator(config)
    raise ValueError(f"unknown mode {mode!r}")
