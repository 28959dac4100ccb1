"""A whole podfleet on this machine: a cluster (or several), Redis, the metadata DB, the
settings an executor and its workers share, and pools of ``podfleet worker`` processes.

The demo, the load test, the benchmarks and the tests all run this fleet. :class:`LocalFleet`
starts it in one way and tears it down in the reverse order (worker pools, Redis, simulator,
then its directory), so nothing it started outlives it. Any piece can be given instead of
started: a running simulator or any kubeconfig, a Redis URL (a fault test kills and restarts
a server of its own; a Sentinel group is a URL), a database URL. What the fleet was given it
leaves running. Given :class:`LocalCluster` specs, it runs one simulator process per cluster
and writes ``PODFLEET_CLUSTERS_FILE`` naming them (:mod:`podfleet.contracts.clusters`); a
test may SIGKILL one cluster's simulator and start it again on the same address.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from podfleet.local.processes import kill_process_group, stop_process_groups, wait_for_watcher
from podfleet.local.redis_server import RedisServer

if TYPE_CHECKING:
    from podfleet.settings import Settings
    from podfleet.simulator.config import SimulatorConfig
    from podfleet.simulator.server import RunningSimulator


def process_environment(env: Mapping[str, str], *, inherit: bool = False) -> dict[str, str]:
    """The environment of a process of the fleet: this process's, then ``env`` over it.

    This process's PODFLEET_* variables are left out unless ``inherit`` (the demo and the load
    test honour the user's), so a test's fleet does not depend on the shell it runs in; so is
    PROMETHEUS_MULTIPROC_DIR, which a worker sets for its own children.
    """
    base = {name: value for name, value in os.environ.items()
            if name != "PROMETHEUS_MULTIPROC_DIR"
            and (inherit or not name.startswith("PODFLEET_"))}
    return {**base, **env}


@dataclass(frozen=True)
class LocalCluster:
    """One cluster of a multi-cluster :class:`LocalFleet`: a simulator of its own, under
    ``name``, with ``labels`` for ``cluster_selector``, its admission budgets
    (``launch_rate``, ``max_pending_pods``: 0 takes the fleet's settings) and, when given,
    the simulator's configuration (nodes, fates, faults)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    launch_rate: float = 0.0
    max_pending_pods: int = 0
    simulator: SimulatorConfig | None = None


def local_clusters(count: int) -> list[LocalCluster]:
    """``count`` clusters for the demo and benchmarks: ``default`` (so a fleet's first
    cluster keeps today's Redis keys), then ``c2``, ``c3``, …, each labelled with its
    ``index``."""
    return [LocalCluster("default" if n == 1 else f"c{n}", labels={"index": str(n)})
            for n in range(1, count + 1)]


class WorkerExited(AssertionError):
    """A worker pool ended by itself, not by a SIGKILL (an AssertionError, so that a test
    reports it as a failure)."""


class WorkerPools:
    """The ``podfleet worker`` commands of one fleet, each a pool of dramatiq processes.

    Each pool leads a process group of its own: one signal reaches its parent and its
    children, as a crash of their host would, and :meth:`stop` leaves none of them behind.
    Pool *n* logs to ``worker-<n>.log`` in ``directory``, which is also its working directory,
    so a relative path in the settings lands there and not in the caller's.
    """

    def __init__(self, env: Mapping[str, str], directory: Path, *,
                 inherit_env: bool = False) -> None:
        """``env``: the PODFLEET_* variables of every pool, read at each start (a test may
        change them between two starts); ``inherit_env``: see :func:`process_environment`."""
        self.env = env
        self.directory = directory
        self.inherit_env = inherit_env
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopped: set[int] = set()

    def start(self, processes: int = 1, threads: int = 4, *, watcher: bool = True,
              queues: Iterable[str] = (), **env: str) -> subprocess.Popen[bytes]:
        """Start one pool of ``processes`` × ``threads``; ``watcher=False`` runs no watcher
        supervisor, ``queues`` limits it to those task queues, and ``env`` adds PODFLEET_*
        variables for this pool alone."""
        command = [sys.executable, "-m", "podfleet.cli", "worker",
                   "--processes", str(processes), "--threads", str(threads)]
        if not watcher:
            command.append("--no-watcher")
        names = list(queues)
        if names:
            command += ["--queues", *names]
        with open(self.log_path(len(self.processes)), "wb") as log:
            process = subprocess.Popen(
                command, env=self.environment(env), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.directory)
        self.processes.append(process)
        return process

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a pool runs with (``extra`` over the pools' variables)."""
        return process_environment({**self.env, **(extra or {})}, inherit=self.inherit_env)

    def log_path(self, n: int) -> Path:
        return self.directory / f"worker-{n}.log"

    def logs(self) -> str:
        """Every pool's log, in the order they started (for a failing test's message)."""
        return "\n".join(self.log_path(n).read_text(errors="replace")
                         for n in range(len(self.processes)) if self.log_path(n).exists())

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL a whole pool, its parent and its dramatiq processes, as a crash would."""
        kill_process_group(process)
        self._stopped.add(process.pid)

    def owner_of(self, pid: int) -> subprocess.Popen[bytes]:
        """The pool whose process group ``pid`` is in: a watcher lease names the dramatiq
        process that holds it, and a crash takes its whole pool."""
        group = os.getpgid(pid)
        for process in self.processes:
            if process.pid == group:
                return process
        raise LookupError(f"pid {pid} (group {group}) is in none of this fleet's worker pools")

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [process for process in self.processes if process.poll() is None]

    def check_alive(self) -> None:
        """Raise :class:`WorkerExited`, with the logs, if a pool ended other than by SIGKILL."""
        for process in self.processes:
            code = process.poll()
            if code is not None and code != -signal.SIGKILL:
                raise WorkerExited(f"worker pool {process.pid} exited with {code}:\n"
                                   f"{self.logs()[-4000:]}")

    def wait_for_watcher(self, process: subprocess.Popen[bytes], timeout: float = 60.0) -> float:
        """Block until a watcher holds every cluster's lease, that is until the pools are up,
        and return the seconds waited; RuntimeError if ``process`` exits first or the time
        runs out."""
        from podfleet.settings import Settings

        settings = Settings.from_env(self.environment())
        return wait_for_watcher(settings.redis.url, settings.redis.prefix, process, timeout,
                                settings.clusters.names)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole group of every pool not yet stopped, wait up to ``timeout``
        seconds, then SIGKILL what is left of each group.

        Quick rather than graceful: a dramatiq process gets the group's SIGTERM and the one
        its parent forwards, and takes the second as "stop now" (a graceful stop of an idle
        pool takes about 2 s, which a test suite pays at every teardown)."""
        running = [p for p in self.processes if p.pid not in self._stopped]
        stop_process_groups(running, timeout)
        self._stopped.update(p.pid for p in running)


class LocalFleet:
    """One podfleet on this machine; a context manager (or :meth:`start`, then :meth:`close`).

    After :meth:`start`:

    - :attr:`simulator`: the cluster simulator (its own process), unless a ``kubeconfig`` was
      given; :attr:`kubeconfig`: the cluster's kubeconfig file; with ``clusters``,
      :attr:`simulators` by cluster name (:attr:`simulator` is the first's), a kubeconfig
      each (:meth:`cluster_kubeconfig`) and ``PODFLEET_CLUSTERS_FILE`` in :attr:`env`;
    - :attr:`redis_url`, and :attr:`redis_server` when the fleet runs a private
      ``redis-server`` (a fault may kill and restart it);
    - :attr:`database_url`: the metadata DB, an SQLite file in :attr:`workdir` unless given,
      migrated unless ``migrate=False`` (a fleet that runs no executor, or a test session
      that migrated its database once);
    - :attr:`env`: the PODFLEET_* variables an executor and its workers share: those pieces,
      the signing key (random unless given), the key prefix and namespace when given, the
      metrics port, the log archive in :attr:`workdir`, then ``env``'s own. It is a dict the
      caller may change: workers started later, and :meth:`settings`, read it then;
    - :attr:`workers`: the fleet's :class:`WorkerPools`.

    ``workdir``: where the kubeconfig, the SQLite file and every log go; kept when given,
    otherwise a temporary directory removed by :meth:`close`. ``inherit_env``: this process's
    own PODFLEET_* variables pass to the settings and the workers (under the fleet's own);
    off, a fleet depends on nothing in the caller's environment.
    """

    def __init__(self, *, workdir: str | os.PathLike[str] | None = None,
                 simulator: SimulatorConfig | RunningSimulator | None = None,
                 kubeconfig: str | os.PathLike[str] | None = None,
                 clusters: Sequence[LocalCluster] = (),
                 redis_url: str | None = None, redis_appendonly: bool = False,
                 database_url: str | None = None, migrate: bool = True,
                 signing_key: str | None = None, redis_prefix: str | None = None,
                 namespace: str | None = None, metrics_port: int = 0,
                 env: Mapping[str, str] | None = None, inherit_env: bool = False) -> None:
        if simulator is not None and kubeconfig is not None:
            raise ValueError("a fleet has one cluster: a simulator or a kubeconfig, not both")
        if clusters and (simulator is not None or kubeconfig is not None):
            raise ValueError("a fleet of several clusters runs a simulator for each: give "
                             "clusters, or a simulator or kubeconfig, not both")
        self._given_clusters = list(clusters)
        #: Each cluster's simulator, by name, when the fleet runs several clusters.
        self.simulators: dict[str, RunningSimulator] = {}
        self._given_workdir = Path(workdir) if workdir is not None else None
        self._given_simulator = simulator
        self._given_kubeconfig = Path(kubeconfig) if kubeconfig is not None else None
        self._redis_appendonly = redis_appendonly
        self._migrate = migrate
        self._own_env = {
            "PODFLEET_SIGNING_KEY": signing_key or secrets.token_hex(32),
            "PODFLEET_METRICS_PORT": str(metrics_port),
            **({"PODFLEET_REDIS_PREFIX": redis_prefix} if redis_prefix else {}),
            **({"PODFLEET_NAMESPACE": namespace} if namespace else {}),
        }
        self._extra_env = dict(env or {})
        self.inherit_env = inherit_env
        self.workdir = self._given_workdir or Path()
        self.simulator: RunningSimulator | None = None
        self.kubeconfig = self._given_kubeconfig or Path()
        self.redis_server: RedisServer | None = None
        self.redis_url = redis_url or ""
        self.database_url = database_url or ""
        self.env: dict[str, str] = {}
        self._workers: WorkerPools | None = None
        self._stack = contextlib.ExitStack()

    @property
    def workers(self) -> WorkerPools:
        if self._workers is None:
            raise RuntimeError("the fleet has not started: no worker pools yet")
        return self._workers

    def start(self) -> LocalFleet:
        """Start every piece not given, in order; if one fails, stop those already started."""
        try:
            self._start_workdir()
            self._start_cluster()
            self._start_redis()
            self._prepare_database()
        except BaseException:
            self._stack.close()
            raise
        inherited = ({name: value for name, value in os.environ.items()
                      if name.startswith("PODFLEET_")} if self.inherit_env else {})
        self.env.update({
            # Default: a private archive. Left at its default it would land in the caller's
            # working directory, for every pod the watcher deletes.
            "PODFLEET_LOG_ARCHIVE": str(self.workdir / "pod-logs"),
            **inherited,
            "PODFLEET_REDIS_URL": self.redis_url,
            "PODFLEET_DATABASE_URL": self.database_url,
            "PODFLEET_KUBECONFIG": str(self.kubeconfig),
            **self._own_env,
            **self._extra_env,
        })
        self._workers = WorkerPools(self.env, self.workdir, inherit_env=self.inherit_env)
        self._stack.callback(self._workers.stop)
        return self

    def _start_workdir(self) -> None:
        if self._given_workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            return
        self.workdir = Path(tempfile.mkdtemp(prefix="podfleet-fleet-"))
        self._stack.callback(shutil.rmtree, self.workdir, True)

    def _start_cluster(self) -> None:
        if self._given_clusters:
            self._start_clusters()
            return
        if self._given_kubeconfig is not None:
            return
        from podfleet.simulator.config import SimulatorConfig
        from podfleet.simulator.server import start_simulator

        given = self._given_simulator
        if given is None or isinstance(given, SimulatorConfig):
            # Its own process: the simulator must not share the executor's GIL.
            self.simulator = start_simulator(given, mode="process",
                                             log=self.workdir / "simulator.log")
            self._stack.callback(self.simulator.stop)
        else:
            self.simulator = given
        self.kubeconfig = self.simulator.write_kubeconfig(self.workdir / "kubeconfig")

    def _start_clusters(self) -> None:
        """One simulator process per cluster, each with its kubeconfig, and the clusters
        file naming them (the first cluster's kubeconfig is also PODFLEET_KUBECONFIG)."""
        entries = []
        for spec in self._given_clusters:
            self.simulators[spec.name] = self._start_simulator(spec.name, spec.simulator)
            entry: dict[str, object] = {
                "name": spec.name, "kubeconfig": str(self.cluster_kubeconfig(spec.name)),
                "labels": dict(spec.labels)}
            if spec.launch_rate:
                entry["launch_rate"] = spec.launch_rate
            if spec.max_pending_pods:
                entry["max_pending_pods"] = spec.max_pending_pods
            entries.append(entry)
        self.simulator = self.simulators[self._given_clusters[0].name]
        self.kubeconfig = self.cluster_kubeconfig(self._given_clusters[0].name)
        clusters_file = self.workdir / "clusters.json"
        clusters_file.write_text(json.dumps({"clusters": entries}, indent=2))
        self._own_env["PODFLEET_CLUSTERS_FILE"] = str(clusters_file)

    def _start_simulator(self, name: str, config: SimulatorConfig | None
                         ) -> RunningSimulator:
        from podfleet.simulator.server import start_simulator

        simulator = start_simulator(config, mode="process",
                                    log=self.workdir / f"simulator-{name}.log")
        # Stopped at close whichever process runs it then (a restart replaces it).
        self._stack.callback(lambda: self.simulators[name].stop())
        simulator.write_kubeconfig(self.cluster_kubeconfig(name))
        return simulator

    def cluster_kubeconfig(self, name: str) -> Path:
        """The kubeconfig file of cluster ``name`` (multi-cluster fleets)."""
        return self.workdir / f"kubeconfig-{name}"

    def kill_cluster(self, name: str) -> None:
        """SIGKILL cluster ``name``'s simulator: its API stops answering, as a cluster whose
        control plane is lost does (its pods are lost with it)."""
        simulator = self.simulators[name]
        process = getattr(simulator, "process", None)
        if process is None:
            raise RuntimeError(f"cluster {name!r} does not run in a process of its own")
        process.kill()
        process.wait(10)

    def restart_cluster(self, name: str) -> RunningSimulator:
        """Start cluster ``name``'s simulator again on the same address, token and CA (so
        every kubeconfig still reaches it), empty, as a rebuilt control plane."""
        from podfleet.simulator.server import start_simulator

        old = self.simulators[name]
        port = urllib.parse.urlsplit(old.url).port
        config = dataclasses.replace(old.config, port=port or 0)
        self.simulators[name] = start_simulator(
            config, mode="process", log=self.workdir / f"simulator-{name}.log")
        return self.simulators[name]

    def _start_redis(self) -> None:
        if self.redis_url:
            return
        self.redis_server = RedisServer(appendonly=self._redis_appendonly).start()
        self._stack.callback(self.redis_server.close)
        self.redis_url = self.redis_server.url

    def _prepare_database(self) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.workdir / 'podfleet.sqlite'}"
        if self._migrate:
            from podfleet.executor.migrate import upgrade

            upgrade(self.database_url)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of another process of the fleet (a locust run, a driver): this
        process's, then :attr:`env`, then ``extra`` (what a worker pool gets)."""
        return self.workers.environment(extra)

    def settings(self, extra: Mapping[str, str] | None = None) -> Settings:
        """The settings an executor of this fleet runs with (``extra`` over :attr:`env`:
        ``{"PODFLEET_EXECUTOR_ID": "a"}``)."""
        from podfleet.settings import Settings

        return Settings.from_env({**self.env, **(extra or {})})

    def close(self) -> None:
        """Stop what the fleet started, the reverse of the order it started them in: the
        worker pools (while Redis still answers them), Redis, the simulator, the directory."""
        self._stack.close()

    def __enter__(self) -> LocalFleet:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
