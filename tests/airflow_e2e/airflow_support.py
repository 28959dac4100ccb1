"""A real Airflow 3.3 deployment on loopback, with podfleet as its executor.

One :class:`AirflowStack` runs ``airflow db migrate``, then the api-server, dag-processor and
scheduler as separate processes, beside podfleet worker processes, a private Redis and the
simulator in local mode (it runs each pod's command, so the real Task SDK runs the task and
reports to the api-server). Tests drive it through the REST API, as a user's tooling would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

from podfleet.local import waiting
from podfleet.local.ports import free_port, wait_for_port
from podfleet.local.processes import kill_process_group, stop_process_groups
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator, start_simulator

# Waits here mostly poll the REST API: twice a second is often enough.
POLL = 0.5

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SIGNING_KEY = "airflow-tests-signing-key-0123456789"


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = POLL) -> T:
    """:func:`podfleet.local.waiting.wait_for`, polling every ``POLL`` seconds by default."""
    return waiting.wait_for(check, timeout, what, interval)


class AirflowStack:
    """Airflow's processes and podfleet's workers, sharing one environment."""

    def __init__(self, *, home: Path, dags: Path, database_url: str, podfleet_env: dict[str, str],
                 extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "PODFLEET_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            # podfleet is the default executor; LocalExecutor runs beside it for the tasks
            # that ask for it (executor="LocalExecutor").
            "AIRFLOW__CORE__EXECUTOR":
                "podfleet:podfleet.airflow.executor.PodFleetExecutor,LocalExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            # psycopg 3 serves the async engine as well (no asyncpg needed).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database_url,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api,
            "AIRFLOW__API_AUTH__JWT_SECRET": "airflow-tests-jwt-secret-0123456789abcdef",
            "AIRFLOW__API__SECRET_KEY": "airflow-tests-api-secret",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # Long enough for a cold first task on a loaded machine (the Task SDK's imports
            # in the pod), short enough for the stuck-in-QUEUED test.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__NUM_STUCK_IN_QUEUED_RETRIES": "0",
            # A killed scheduler's tasks are looked at for adoption within seconds.
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Finished tasks' logs from podfleet's archive (their pods are deleted).
            "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS":
                "podfleet.airflow.logging_config.LOGGING_CONFIG",
            **podfleet_env,
            **(extra_env or {}),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.session = requests.Session()

    # --- processes --------------------------------------------------------------------------

    def run(self, *args: str, timeout: float = 300, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, text=True,
                                capture_output=True, timeout=timeout, cwd=self.home)
        if check and result.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115
        with log:
            process = subprocess.Popen(command, env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       cwd=self.home)
        self.processes[name] = process
        return process

    def start_airflow(self, component: str) -> subprocess.Popen[bytes]:
        return self.start(component, [str(BIN / "airflow"), component])

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self.start(name, [str(BIN / "podfleet"), "worker", "--processes", "1",
                                 "--threads", "4"])

    def start_simulator(self, kubeconfig: Path, *, nodes: int, node_pods: int,
                        **config: Any) -> RunningSimulator:
        """The simulator in local mode, in a process of its own, with a kubeconfig for it at
        ``kubeconfig``. It runs each pod's command with this stack's environment (Airflow's
        settings: the execution API's URL, the DAGs folder), as an image's would, so the
        process starts with that environment; ``config``: more SimulatorConfig fields."""
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            sim = start_simulator(SimulatorConfig(
                default_termination_grace_period_s=2,
                cluster=ClusterConfig(nodes=nodes, node_pods=node_pods, local_mode=True,
                                      schedule_delay_s=0.01, container_start_delay_s=0.05,
                                      termination_delay_s=0.05), **config), mode="process")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        sim.write_kubeconfig(kubeconfig)
        return sim

    def boot(self) -> None:
        self.run("db", "migrate")
        self.start_worker()
        self.start_airflow("api-server")
        wait_for_port("127.0.0.1", self.api_port, timeout=120)
        wait_for(self.api_up, 120, "the api-server")
        self.start_airflow("dag-processor")
        self.start_airflow("scheduler")

    def kill(self, name: str) -> None:
        """SIGKILL a component's whole process group, as a crash would."""
        kill_process_group(self.processes.pop(name))

    def stop(self) -> None:
        stop_process_groups(list(self.processes.values()))
        self.processes.clear()
        self.session.close()

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None and code != -signal.SIGKILL:
                raise AssertionError(f"{name} exited with {code}:\n{self.log(name)[-4000:]}")

    # --- REST API ---------------------------------------------------------------------------

    def api_up(self) -> bool:
        try:
            return self.session.get(f"{self.api}/api/v2/monitor/health", timeout=5).ok
        except requests.RequestException:
            return False

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(f"{self.api}/api/v2{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        def parsed() -> bool:
            self.check_alive()
            return self.session.get(f"{self.api}/api/v2/dags/{dag_id}", timeout=10).ok
        wait_for(parsed, timeout, f"the dag-processor to parse {dag_id}")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.session.patch(f"{self.api}/api/v2/dags/{dag_id}", json={"is_paused": False},
                           timeout=30).raise_for_status()
        response = self.session.post(f"{self.api}/api/v2/dags/{dag_id}/dagRuns",
                                     json={"logical_date": None, "conf": conf or {}},
                                     timeout=30)
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                             limit=1000)["task_instances"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240) -> str:
        def finished() -> str | None:
            self.check_alive()
            state = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None
        return wait_for(finished, timeout, f"run {dag_id}/{run_id} to finish")

    def wait_for_ti_state(self, dag_id: str, run_id: str, task_id: str, states: set[str],
                          timeout: float = 180, map_index: int = -1) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            self.check_alive()
            for ti in self.task_instances(dag_id, run_id):
                if ti["task_id"] == task_id and ti["map_index"] == map_index \
                        and ti["state"] in states:
                    return ti
            return None
        return wait_for(reached, timeout, f"{dag_id}.{task_id} to be in {sorted(states)}")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        response = self.session.get(
            f"{self.api}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
            f"/logs/{try_number}", params={"full_content": "true"}, timeout=60)
        response.raise_for_status()
        content = response.json().get("content") or []
        return "\n".join(str(line.get("event", line)) if isinstance(line, dict) else str(line)
                         for line in content)
