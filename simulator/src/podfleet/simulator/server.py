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
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from podfleet.simulator.admin import AdminClient
from podfleet.simulator.app import bind_socket, serve, url_of
from podfleet.simulator.config import SimulatorConfig, config_to_json, prepared
from podfleet.simulator.kubeconfig import DEFAULT_TOKEN, write_kubeconfig
from podfleet.simulator.tls import client_context

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
        self._ca_file: str | None = None
        self.admin = AdminClient(url, token=config.token, ssl_context=self.ssl_context())

    @property
    def token(self) -> str:
        return self.config.token or DEFAULT_TOKEN

    @property
    def tls(self) -> bool:
        return self.config.tls.enabled

    @property
    def ca_pem(self) -> str | None:
        """The PEM of the CA that signed the server's certificate (None over plain HTTP)."""
        return self.config.tls.ca_pem if self.tls else None

    @property
    def ca_file(self) -> str | None:
        """A file holding `ca_pem`, for clients that take a path (removed by `stop()`)."""
        if self.ca_pem is None:
            return None
        if self._ca_file is None:
            fd, path = tempfile.mkstemp(prefix="podfleet-sim-ca-", suffix=".crt")
            with os.fdopen(fd, "w") as handle:
                handle.write(self.ca_pem)
            self._ca_file = path
        return self._ca_file

    def ssl_context(self) -> ssl.SSLContext | None:
        """An SSLContext trusting this simulator's CA (None over plain HTTP)."""
        return client_context(self.ca_pem) if self.ca_pem is not None else None

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header a client of this simulator sends."""
        return {"Authorization": f"Bearer {self.token}"}

    def api_client(self) -> ApiClient:
        """A new official-client ApiClient pointed at this simulator (close it when done)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        # 37.x reads "authorization"; 36.x reads the token under either name but the prefix
        # only under "BearerToken" (it would send the bare token): name both.
        configuration.api_key = {"authorization": self.token, "BearerToken": self.token}
        configuration.api_key_prefix = {"authorization": "Bearer", "BearerToken": "Bearer"}
        if self.ca_file is not None:
            configuration.ssl_ca_cert = self.ca_file
        return client.ApiClient(configuration)

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        """Write a kubeconfig for this simulator (kubectl and load_kube_config accept it)."""
        ca_data = self.config.tls.ca_data() if self.tls else None
        return write_kubeconfig(path, self.url, token=self.token, ca_data=ca_data)

    def stop(self) -> None:
        raise NotImplementedError

    def _remove_ca_file(self) -> None:
        if self._ca_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._ca_file)
            self._ca_file = None

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
        super().__init__(url_of(sock, tls=config.tls.enabled), config)
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
        self._remove_ca_file()
        if not self._thread.is_alive():
            return
        stop_event = self._stop_event
        if stop_event is not None:
            self._loop.call_soon_threadsafe(stop_event.set)
        self._thread.join(15)


class ProcessSimulator(RunningSimulator):
    """A simulator in a child `python -m podfleet.simulator` process.

    ``log``: a file for the process's stderr (its log lines), so a caller that keeps every
    process's log in one directory keeps the simulator's too; by default it shares ours.
    """

    def __init__(self, config: SimulatorConfig, log: str | os.PathLike[str] | None = None) -> None:
        # The config goes through stdin, not argv: it may hold the API token.
        with contextlib.ExitStack() as files:
            stderr = files.enter_context(open(log, "ab")) if log is not None else None
            self.process = subprocess.Popen(
                [sys.executable, "-m", "podfleet.simulator", "--config-json", "-"],
                stdout=subprocess.PIPE,
                stdin=subprocess.PIPE,
                stderr=stderr,
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
        self._remove_ca_file()
        self._terminate()


def start_simulator(
    config: SimulatorConfig | None = None,
    *,
    mode: Literal["thread", "process"] = "thread",
    log: str | os.PathLike[str] | None = None,
) -> RunningSimulator:
    """Start a simulator and return once it answers requests.

    TLS is on unless `config.tls.enabled` is False: the simulator then has a CA of its own and
    a bearer token (generated unless `config.token` is set), both carried by `api_client()`,
    `write_kubeconfig()`, `ssl_context()` and `auth_headers()`. `log` (process mode only) is a
    file for the simulator process's log lines.
    """
    config = prepared(config or SimulatorConfig())
    if mode == "thread":
        if log is not None:
            raise ValueError("a thread-mode simulator logs where this process does: no log file")
        return ThreadSimulator(config)
    if mode == "process":
        return ProcessSimulator(config, log)
    raise ValueError(f"unknown mode {mode!r}")
