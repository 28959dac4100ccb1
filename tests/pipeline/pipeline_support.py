"""The whole pipeline for one test: real ``podfleet worker`` processes, the simulator in its own
process, Redis, PostgreSQL, and real Executors in the test process.

Outcomes are read where a user would read them: the executor's event buffer, the metadata DB,
the simulator's pod list and admin stats, the watcher lease in Redis. Nothing inside a worker
is reached into.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import sqlalchemy as sa

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import LAUNCH_ID_LABEL, MANAGED_SELECTOR, QUEUE_ANNOTATION
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.executor.db import TaskInstance, make_engine
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.local.waiting import wait_for
from podfleet.redis_client import connect as connect_redis
from podfleet.settings import Settings
from podfleet.simulator.admin import SimStats
from podfleet.simulator.cluster import fate
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator
from podfleet.workers.watcher.lease import LeaseHolder, current_holder

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
PODFLEET = str(Path(sys.executable).with_name("podfleet"))
SIGNING_KEY = "pipeline-tests-signing-key-0123456789"
LEASE_SECONDS = 2.0
BROKER_HEARTBEAT_TIMEOUT_SECONDS = 3.0
COMMAND = ["true"]

# Fates a test asks of the simulated kubelet, and what each must end as (state, reason).
SUCCESS = {fate.DURATION: "0.2"}
EXIT_3 = {fate.DURATION: "0.2", fate.EXIT_CODE: "3"}
OOM = {fate.DURATION: "0.2", fate.OOM: "true"}
IMAGE_PULL = {fate.IMAGE_PULL_ERROR: "true"}
EXPECTED = {
    "success": (TaskState.SUCCESS, None),
    "exit3": (TaskState.FAILED, "Error (exit code 3)"),
    "oom": (TaskState.FAILED, "OOMKilled (exit code 137)"),
    "image_pull": (TaskState.FAILED, "ErrImagePull"),
}
FATES = {"success": SUCCESS, "exit3": EXIT_3, "oom": OOM, "image_pull": IMAGE_PULL}


def sim_config() -> SimulatorConfig:
    """Fast latencies: a pod is Running ~60 ms after its create, unless its fate says more."""
    return SimulatorConfig(
        default_termination_grace_period_s=1,
        cluster=ClusterConfig(nodes=10, node_pods=500, schedule_delay_s=0.01,
                              container_start_delay_s=0.05, default_run_time_s=0.2,
                              image_pull_backoff_s=0.2, termination_delay_s=0.05,
                              reschedule_delay_s=0.01),
    )


class PendingSampler:
    """Samples the namespace's Pending podfleet pods every 0.1 s on a thread of its own, as
    the simulator lists them: each sample is (monotonic time, Pending pods per task queue)."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.samples: list[tuple[float, Counter[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PendingSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            # One page: the pages of a paged list are read at different moments, and during
            # a burst a pod counted Pending on one page may already run, while newer ones
            # appear on the next, which no instant ever had.
            pods = self.kube.list_pods(self.namespace, label_selector=MANAGED_SELECTOR,
                                       page_size=100_000).items
            self.samples.append((time.monotonic(), Counter(
                str((p["metadata"].get("annotations") or {}).get(QUEUE_ANNOTATION))
                for p in pods if (p.get("status") or {}).get("phase") == "Pending")))


def task_key(n: int, dag: str = "pipeline") -> TaskKey:
    return TaskKey(dag, f"task-{n}", "run-1", -1, 1)


def submission(key: TaskKey, annotations: dict[str, str]) -> TaskSubmission:
    return TaskSubmission(key, COMMAND, executor_config={"annotations": dict(annotations)})


@dataclass(frozen=True, slots=True)
class Report:
    """One entry the scheduler read from an executor's event buffer."""

    executor: str
    key: TaskKey
    state: TaskState
    reason: str | None


class Pipeline:
    """One test's podfleet: a :class:`LocalFleet` on the session's servers (its settings,
    worker pools and directory), executors, and readers of the outcome."""

    def __init__(self, *, sim: RunningSimulator, database_url: str, redis_url: str,
                 namespace: str, tmp_path: Path) -> None:
        self.sim = sim
        self.database_url = database_url
        self.namespace = namespace
        self.tmp_path = tmp_path
        self.prefix = f"pf-{uuid.uuid4().hex[:8]}"
        self.keys = RedisKeys(self.prefix)
        # The session migrated the database once; the simulator and Redis are the session's
        # (or the test's own, to kill), so the fleet leaves them running.
        self.fleet = LocalFleet(
            workdir=tmp_path, simulator=sim, redis_url=redis_url, database_url=database_url,
            migrate=False, signing_key=SIGNING_KEY, redis_prefix=self.prefix,
            namespace=namespace, env={
                "PODFLEET_PARALLELISM": "0",
                "PODFLEET_BATCH_SIZE": "20",
                "PODFLEET_LAUNCH_RATE": "0",
                "PODFLEET_LAUNCH_BACKOFF_SECONDS": "0.05",
                "PODFLEET_LAUNCH_BACKOFF_MAX_SECONDS": "0.5",
                "PODFLEET_KUBE_TIMEOUT_SECONDS": "5",
                "PODFLEET_DELETE_POLICY": "never",  # fault tests set the default, always
                "PODFLEET_WATCHER_LEASE_SECONDS": str(LEASE_SECONDS),
                "PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS":
                    str(BROKER_HEARTBEAT_TIMEOUT_SECONDS),
                "PODFLEET_HEARTBEAT_SECONDS": "0.5",
                "PODFLEET_HEARTBEAT_TIMEOUT_SECONDS": "60",
                "PODFLEET_QUEUED_TIMEOUT_SECONDS": "0",
            }).start()
        #: The PODFLEET_* variables of the executors and workers; a test may change them.
        self.env = self.fleet.env
        self.executors: list[Executor] = []
        self.reports: list[Report] = []
        self.redis: redis.Redis = connect_redis(redis_url, socket_timeout=5)
        self._kube: KubeClient | None = None

    # --- workers --------------------------------------------------------------------------

    def start_worker(self, *, watcher: bool = True, queues: Iterable[str] = (),
                     threads: int = 4, **env: str) -> subprocess.Popen[bytes]:
        """``podfleet worker`` with one dramatiq process, in its own process group."""
        return self.fleet.workers.start(1, threads, watcher=watcher, queues=queues, **env)

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the whole worker (its parent and dramatiq processes), as a crash would."""
        self.fleet.workers.kill(process)

    def worker_of(self, pid: int) -> subprocess.Popen[bytes]:
        """The worker command whose process group ``pid`` belongs to."""
        return self.fleet.workers.owner_of(pid)

    def stop_workers(self) -> None:
        self.fleet.workers.stop()

    def check_workers_alive(self) -> None:
        self.fleet.workers.check_alive()

    def worker_logs(self) -> str:
        return self.fleet.workers.logs()

    def watcher(self) -> LeaseHolder | None:
        return current_holder(self.redis, self.keys)

    def wait_for_watcher(self, timeout: float = 60.0, *,
                         other_than: LeaseHolder | None = None) -> LeaseHolder:
        """The lease holder once there is one (other than ``other_than``, if given)."""
        def holder() -> LeaseHolder | None:
            found = self.watcher()
            if found is None or (other_than is not None and found.token == other_than.token):
                return None
            return found

        found = wait_for(holder, timeout, "a watcher to hold the lease")
        assert found is not None
        return found

    # --- executors ------------------------------------------------------------------------

    def executor(self, executor_id: str | None = None, **env: Any) -> Executor:
        """A real Executor on this pipeline's servers; ``env`` overrides PODFLEET_* variables
        by their lower-case names without the prefix (``queued_timeout_seconds=2``)."""
        values = dict(self.env)
        values["PODFLEET_EXECUTOR_ID"] = executor_id or f"ex-{uuid.uuid4().hex[:8]}"
        values.update({f"PODFLEET_{k.upper()}": str(v) for k, v in env.items()})
        made = Executor(Settings.from_env(values))
        self.executors.append(made)
        return made

    def started_executor(self, executor_id: str | None = None, **env: Any) -> Executor:
        """:meth:`executor`, started (registered, so it may submit): most tests' opening."""
        made = self.executor(executor_id, **env)
        made.start()
        return made

    def sync(self, executor: Executor) -> None:
        """One scheduler loop: sync, then read the event buffer as Airflow's scheduler does."""
        executor.sync()
        for key, (state, reason) in executor.get_event_buffer().items():
            self.reports.append(Report(executor.executor_id, key, state, reason))

    def run_until(self, executor: Executor, done: Callable[[], bool], timeout: float,
                  what: str) -> None:
        """Sync ``executor`` like a scheduler loop until ``done()`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            self.sync(executor)
            if done():
                return
            self.check_workers_alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; DB states "
                    f"{Counter(r.state for r in self.rows())}; worker logs:\n"
                    f"{self.worker_logs()[-3000:]}")
            time.sleep(0.05)

    def run_until_finished(self, executor: Executor, keys: Iterable[TaskKey],
                           timeout: float = 60.0) -> None:
        """Sync until every key has a terminal report in the event buffer."""
        wanted = set(keys)
        self.run_until(executor, lambda: wanted <= self.finished_keys(), timeout,
                       f"{len(wanted)} tasks to finish")

    def finished_keys(self) -> set[TaskKey]:
        return {r.key for r in self.reports if r.state.is_terminal}

    def terminal_reports(self) -> Counter[tuple[TaskKey, TaskState]]:
        return Counter((r.key, r.state) for r in self.reports if r.state.is_terminal)

    def close_executors(self) -> None:
        for made in self.executors:
            with contextlib.suppress(Exception):  # fenced, crashed on purpose, or Redis gone
                made.terminate()

    # --- outcomes -------------------------------------------------------------------------

    def rows(self) -> list[TaskInstance]:
        engine = make_engine(self.database_url)
        try:
            with sa.orm.Session(engine) as session:
                return list(session.scalars(sa.select(TaskInstance).order_by(TaskInstance.id)))
        finally:
            engine.dispose()

    def rows_by_key(self) -> dict[TaskKey, TaskInstance]:
        found = self.rows()
        by_key = {row.key: row for row in found}
        assert len(by_key) == len(found), "two rows for one task try"
        return by_key

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            self._kube = KubeClient(self.sim.api_client(), timeout_seconds=10)
        return self._kube

    def pods(self) -> list[dict[str, Any]]:
        return self.kube.list_pods(self.namespace, label_selector=MANAGED_SELECTOR).items

    def pods_by_launch(self) -> dict[str, dict[str, Any]]:
        return {pod["metadata"]["labels"][LAUNCH_ID_LABEL]: pod for pod in self.pods()}

    def stats(self) -> SimStats:
        return self.sim.admin.stats()

    def kept_pod_per_row(self, rows: dict[TaskKey, TaskInstance]) -> dict[str, dict[str, Any]]:
        """Assert that the cluster made one pod per row (none refused as AlreadyExists, none
        deleted: the delete policy is "never"), each under its row's launch id; those pods
        by launch id."""
        stats = self.stats()
        assert stats.creates.accepted == len(rows)
        assert stats.creates.rejected.get("AlreadyExists", 0) == 0
        assert stats.requests.get("delete", {}) == {}
        pods = self.pods_by_launch()
        assert set(pods) == {row.launch_id for row in rows.values()}
        return pods

    def close(self) -> None:
        self.close_executors()
        self.fleet.close()
        if self._kube is not None:
            self._kube.close()
        self.redis.close()


def open_pipeline(sim: RunningSimulator, database_url: str, redis_url: str, namespace: str,
                  tmp_path: Path) -> Iterator[Pipeline]:
    """A :class:`Pipeline` on these services, for a fixture to ``yield from``: closed when
    the test ends."""
    world = Pipeline(sim=sim, database_url=database_url, redis_url=redis_url,
                     namespace=namespace, tmp_path=tmp_path)
    yield world
    world.close()


def submit_tasks(executor: Executor, count: int, seconds: str) -> list[TaskKey]:
    """Submit tasks ``task_key(0)`` … ``task_key(count - 1)`` whose pods run ``seconds`` and
    succeed, in one call; their keys."""
    keys = [task_key(n) for n in range(count)]
    executor.submit_many([submission(key, {fate.DURATION: seconds}) for key in keys])
    return keys


def submit_fleet(executor: Executor, fates: dict[str, dict[str, str]], counts: dict[str, int],
                 dag: str = "pipeline") -> dict[TaskKey, str]:
    """Submit ``counts[kind]`` tasks of each kind in one call; returns key -> kind."""
    kinds: dict[TaskKey, str] = {}
    n = 0
    for kind, count in counts.items():
        for _ in range(count):
            kinds[task_key(n, dag)] = kind
            n += 1
    executor.submit_many([submission(key, fates[kind]) for key, kind in kinds.items()])
    return kinds
