"""How every podfleet process exposes ``/metrics``: one endpoint per host for workers.

The choice: **one endpoint per host** (per container, per pod), served by the ``podfleet worker``
parent process on ``PODFLEET_METRICS_PORT`` (default 9464). Its child processes — launcher and
watcher actors, however many — record into prometheus-client's multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``), and the parent's endpoint adds them all up at scrape time with
:class:`prometheus_client.multiprocess.MultiProcessCollector`. Why not a port per process:
Prometheus would need to know how many processes each host runs (and which ports), a restart
would change the series, and ``docker compose --scale worker=N`` would multiply port juggling.
One port per host keeps scrape configs to "every worker host, port 9464".

The rules that make multiprocess mode correct, and that this module enforces:

- ``PROMETHEUS_MULTIPROC_DIR`` is set before ``prometheus_client`` is imported anywhere in the
  process (prometheus-client picks its value class at import), so
  :func:`prepare_multiprocess_dir` must run first in ``podfleet worker`` — before it imports
  ``podfleet.monitoring.metrics`` or dramatiq — and children inherit the variable. This module
  itself imports ``prometheus_client`` only inside functions for that reason.
- The directory is private to one host (one PID namespace) and emptied at start, so a previous
  run's files or another host's PIDs are never summed in.
- When a child exits its live gauges (``livesum``/``livemax``…, e.g. the watcher lease) must be
  dropped: the parent calls :func:`mark_process_dead`, and the endpoint also sweeps the files
  of PIDs that no longer exist before every scrape (:class:`DeadProcessSweep`), so a SIGKILLed
  child the parent never reaped cannot keep "lease held = 1" alive. Counters and histograms of
  dead processes stay: their totals must not go backwards.

Single-process users (the executor inside a scheduler, the simulator) use the default registry
and :func:`serve_metrics` without a multiprocess directory.

dramatiq's own message metrics come from :class:`podfleet.monitoring.dramatiq_metrics.
DramatiqMetrics`, a middleware that records into the same registry and directory; dramatiq's
bundled Prometheus middleware is not used (it starts a second server on 9191 and points
``PROMETHEUS_MULTIPROC_DIR`` at its own directory, which would split the scrape).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

    from podfleet.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_DB_FILE = re.compile(r"^(?P<kind>[a-z_]+)_(?P<pid>\d+)\.db$")
# Live gauges are the ones whose value means "this process, now" and must vanish with it.
_LIVE_MODES = ("livesum", "livemax", "livemin", "liveall", "livemostrecent")


class MultiprocessSetupError(RuntimeError):
    """prometheus_client was imported before the multiprocess directory was configured."""


def prepare_multiprocess_dir(settings: Settings | None = None, path: str | None = None) -> str:
    """Create and empty the multiprocess directory, export it, and return its path.

    ``path`` wins over ``settings.metrics.multiprocess_dir`` (``PODFLEET_METRICS_DIR``); with
    neither a private temporary directory is made. Call it in the ``podfleet worker`` parent
    before anything imports ``prometheus_client``; the child processes it starts afterwards
    inherit ``PROMETHEUS_MULTIPROC_DIR``. Raises :class:`MultiprocessSetupError` when
    prometheus_client was already imported in single-process mode (metrics would silently stay
    in this process's memory and never reach the endpoint).
    """
    _check_not_imported_single_process()
    chosen = path or (settings.metrics.multiprocess_dir if settings is not None else None)
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        # Stale files from a previous run would be added to this run's totals.
        for stale in glob.glob(os.path.join(chosen, "*.db")):
            os.remove(stale)
    else:
        chosen = tempfile.mkdtemp(prefix="podfleet-metrics-")
    os.environ[MULTIPROC_ENV] = chosen
    return chosen


def _check_not_imported_single_process() -> None:
    values = sys.modules.get("prometheus_client.values")
    if values is None:
        return
    # In multiprocess mode the file path is read from the environment when a value is first
    # written, so an earlier import in multiprocess mode is fine; single-process mode is not.
    if getattr(values.ValueClass, "__name__", "") == "MmapedValue":
        return
    raise MultiprocessSetupError(
        "prometheus_client was imported before prepare_multiprocess_dir(): call it first in "
        "the process (before importing podfleet.monitoring.metrics or dramatiq)")


def multiprocess_dir() -> str | None:
    """The exported multiprocess directory of this process, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Drop the live gauges of an exited child ``pid`` (call on every child exit)."""
    directory = path or multiprocess_dir()
    if not directory:
        return
    for mode in _LIVE_MODES:
        for name in glob.glob(os.path.join(directory, f"gauge_{mode}_{pid}.db")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def pids_in_dir(path: str) -> set[int]:
    """PIDs that have written metric files into ``path``."""
    found: set[int] = set()
    for name in os.listdir(path):
        match = _DB_FILE.match(name)
        if match:
            found.add(int(match["pid"]))
    return found


@dataclass(eq=False)
class DeadProcessSweep:
    """A collector that, at scrape time, drops live gauges of PIDs that no longer exist.

    It yields no metrics; registering it before the MultiProcessCollector makes every scrape
    see only live processes' gauges even when a child was SIGKILLed and nobody called
    :func:`mark_process_dead`. It assumes the directory belongs to this PID namespace, which
    :func:`prepare_multiprocess_dir` documents.
    """

    path: str
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            for pid in pids_in_dir(self.path):
                if not _pid_alive(pid):
                    mark_process_dead(pid, self.path)
        return ()


def multiprocess_registry(path: str | None = None,
                          extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """A registry that sums every process's metrics in ``path`` (default: the exported dir).

    ``extra`` collectors (e.g. the broker collector) are added after the multiprocess ones.
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    directory = path or multiprocess_dir()
    if not directory:
        raise MultiprocessSetupError(
            "no multiprocess directory: call prepare_multiprocess_dir() first")
    registry = CollectorRegistry(auto_describe=False)
    # Registration order is collection order: sweep first, then read the files.
    registry.register(DeadProcessSweep(directory))
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    for collector in extra:
        registry.register(collector)
    return registry


def process_registry() -> CollectorRegistry:
    """The registry a single-process program serves: prometheus-client's default one."""
    from prometheus_client import REGISTRY

    return REGISTRY


@dataclass
class MetricsServer:
    """A running ``/metrics`` HTTP server (a daemon thread); ``close()`` stops it."""

    host: str
    port: int
    _shutdown: threading.Event = field(default_factory=threading.Event)
    _server: object = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        server = self._server
        if server is not None and not self._shutdown.is_set():
            self._shutdown.set()
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(port: int, registry: CollectorRegistry | None = None,
                  host: str = "0.0.0.0") -> MetricsServer:
    """Serve ``registry`` (default: the process registry) on ``host:port`` in a daemon thread.

    ``port=0`` binds a free port; the returned server's ``port`` is the one bound. The worker
    parent passes :func:`multiprocess_registry`; a single process passes nothing.
    """
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host,
                                       registry=registry or process_registry())
    bound = int(server.server_address[1])
    return MetricsServer(host=host, port=bound, _server=server, _thread=thread)


def remove_multiprocess_dir(path: str) -> None:
    """Delete a private directory made by :func:`prepare_multiprocess_dir` (on shutdown)."""
    shutil.rmtree(path, ignore_errors=True)


def serve_worker_metrics(settings: Settings, queues: Iterable[str] = (),
                         host: str | None = None, port: int | None = None
                         ) -> MetricsServer | None:
    """Everything ``podfleet worker``'s parent serves: all children's metrics plus the broker's.

    Call after :func:`prepare_multiprocess_dir`. ``queues`` defaults to the launch queue; the
    broker collector also discovers any other dramatiq queue in Redis. Returns None when
    ``PODFLEET_METRICS_PORT`` is 0 (metrics off) and ``port`` is not given.
    """
    chosen = settings.metrics.port if port is None else port
    if port is None and chosen == 0:
        return None
    from podfleet.broker import broker_namespace
    from podfleet.monitoring.admission_collector import AdmissionCollector
    from podfleet.monitoring.broker_collector import BrokerCollector

    broker = BrokerCollector.from_url(settings.redis.url,
                                      tuple(queues) or (settings.launch.queue,),
                                      namespace=broker_namespace(settings), discover=True)
    # The broker collector's small pool (short timeouts) serves admission's reads too.
    admission = AdmissionCollector(broker.client, settings)
    return serve_metrics(chosen, multiprocess_registry(extra=[broker, admission]),
                         host=settings.metrics.host if host is None else host)
