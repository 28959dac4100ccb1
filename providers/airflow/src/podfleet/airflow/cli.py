"""``airflow podfleet status | cleanup-pods | generate-dag-yaml``.

Registered through :meth:`PodFleetExecutor.get_cli_commands` (Airflow lists an executor's
commands when it is configured) and run with podfleet's settings read from ``[podfleet]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from podfleet.airflow.config import podfleet_environ
from podfleet.airflow.pod_config import PodTemplates, resolve_executor_config
from podfleet.airflow.workloads import TASK_SDK_ENTRY, airflow_metadata, task_key
from podfleet.contracts.messages import LaunchRequest, new_launch_id
from podfleet.contracts.naming import MANAGED_SELECTOR
from podfleet.contracts.pod_status import parse_time
from podfleet.pods import PodFactory, task_namespace, validate_executor_config
from podfleet.settings import Settings

FINISHED_PHASES = ("Succeeded", "Failed")


def _settings(team: str | None = None) -> Settings:
    from airflow.configuration import conf

    def get(section: str, option: str) -> str | None:
        kwargs: dict[str, Any] = {"fallback": None}
        if team:
            kwargs["team_name"] = team
        value = conf.get(section, option, **kwargs)
        return None if value is None else str(value)

    environ = podfleet_environ(get)
    os.environ.update(environ)  # podfleet's own commands read the process environment
    return Settings.from_env(environ)


def status(args: argparse.Namespace) -> None:
    """podfleet's ``status`` with Airflow's own state of each try first (a pod that exited 0
    may have run a task that failed), then the pod outcomes, executors and heartbeats."""
    from podfleet.airflow.task_states import AirflowTaskStates
    from podfleet.executor.cli import status as podfleet_status

    _settings(getattr(args, "team", None))
    raise SystemExit(podfleet_status.run(argparse.Namespace(
        dag_id=args.dag_id, state=args.state, json=args.json), AirflowTaskStates()))


def cleanup_pods(args: argparse.Namespace) -> None:
    """Delete podfleet's finished pods, and pods pending for longer than a bound.

    A finished pod is normally deleted by podfleet's watcher (delete policy); this sweeps
    what a policy of ``never`` or an outage left behind. Pending pods younger than five
    minutes are never touched, as upstream's command protects them.
    """
    from podfleet.kube.client import KubeClient
    from podfleet.kube.errors import KubeError, Unreachable

    settings = _settings(getattr(args, "team", None))
    kube = KubeClient.from_settings(settings.kubernetes)
    now = time.time()
    pending_age = max(5, args.min_pending_minutes) * 60
    completed_age = max(0, args.min_completed_minutes) * 60
    deleted = 0
    try:
        namespace = args.namespace or settings.kubernetes.namespace
        for pod in kube.list_pods(namespace, label_selector=MANAGED_SELECTOR).items:
            meta, status_ = pod.get("metadata") or {}, pod.get("status") or {}
            phase = status_.get("phase") or "Pending"
            created = parse_time(meta.get("creationTimestamp"))
            age = 0.0 if created is None else now - created
            if ((phase in FINISHED_PHASES and age >= completed_age)
                    or (phase == "Pending" and age >= pending_age)):
                try:
                    kube.delete_pod(meta.get("namespace", namespace), meta["name"])
                except (KubeError, Unreachable) as exc:
                    print(f"cannot delete {meta['name']}: {exc}")
                    continue
                deleted += 1
                if args.verbose:
                    print(f"deleted {meta['name']} ({phase}, {age / 60:.0f} min old)")
    finally:
        kube.close()
    print(f"deleted {deleted} pod(s)")


def generate_dag_yaml(args: argparse.Namespace) -> None:
    """Write the pod podfleet would create for every task of a DAG, one YAML file each."""
    from airflow.utils.cli import get_bagged_dag

    settings = _settings(getattr(args, "team", None))
    dag = get_bagged_dag(bundle_names=args.bundle_name, dag_id=args.dag_id)
    factory = PodFactory(settings)
    templates = PodTemplates()
    out = Path(args.output_path) / "podfleet_yaml_output"
    out.mkdir(parents=True, exist_ok=True)
    run_id = f"manual__{time.strftime('%Y-%m-%dT%H:%M:%S')}"
    for task in dag.tasks:
        ti = SimpleNamespace(dag_id=dag.dag_id, task_id=task.task_id, run_id=run_id,
                             map_index=-1, try_number=1, id="<task-instance-id>")
        labels, annotations = airflow_metadata(ti, scheduler_job_id=None,
                                               airflow_version=_airflow_version())
        config = validate_executor_config(resolve_executor_config(
            task.executor_config or {}, labels=labels, annotations=annotations,
            templates=templates, mutation_hook=None))
        request = LaunchRequest(
            key=task_key(ti), launch_id=new_launch_id(),
            command=(*TASK_SDK_ENTRY, "--json-string", "<workload JSON>"),
            executor_id="<executor>", queued_at=time.time(),
            namespace=task_namespace(config, settings.kubernetes.namespace),
            queue=task.queue, executor_config=config)
        pod = factory.build(request)
        path = out / f"{pod['metadata']['name']}.yml"
        path.write_text(yaml.safe_dump(pod, sort_keys=False))
    print(f"YAML output can be found at {out}/")


def _airflow_version() -> str:
    from podfleet.airflow.compat import airflow_version

    return airflow_version()


def command_group() -> Any:
    """The ``airflow podfleet`` group, in Airflow's CLI model."""
    from airflow.cli.cli_config import (
        ARG_DAG_ID,
        ARG_OUTPUT_PATH,
        ARG_VERBOSE,
        ActionCommand,
        Arg,
        GroupCommand,
        lazy_load_command,
        positive_int,
    )

    try:
        from airflow.cli.cli_config import ARG_BUNDLE_NAME
    except ImportError:  # pragma: no cover - Airflow 2
        ARG_BUNDLE_NAME = Arg(("--bundle-name",), default=None)
    team = Arg(("--team",), default=None, help="team whose [podfleet] settings to use")
    namespace = Arg(("--namespace",), default=None,
                    help="namespace to clean (default: [podfleet] namespace)")
    pending = Arg(("--min-pending-minutes",), default=30, type=positive_int(allow_zero=False),
                  help="delete pods pending for longer than this (at least 5)")
    completed = Arg(("--min-completed-minutes",), default=1,
                    type=positive_int(allow_zero=True),
                    help="delete finished pods older than this")
    dag_filter = Arg(("--dag-id",), default=None, help="only this DAG's tasks")
    state = Arg(("--state",), default=None, help="only tries whose pod ended in this state")
    as_json = Arg(("--json",), action="store_true", help="machine-readable output")
    here = "podfleet.airflow.cli."
    return GroupCommand(
        name="podfleet",
        help="Tools for podfleet's executor (tasks as pods through a worker pool)",
        subcommands=(
            ActionCommand(name="status", help="task tries by Airflow state and by pod outcome, "
                          "and podfleet's executors",
                          func=lazy_load_command(here + "status"),
                          args=(dag_filter, state, as_json, team)),
            ActionCommand(name="cleanup-pods",
                          help="delete podfleet's finished pods and long-pending ones",
                          func=lazy_load_command(here + "cleanup_pods"),
                          args=(namespace, pending, completed, team, ARG_VERBOSE)),
            ActionCommand(name="generate-dag-yaml",
                          help="write the pod podfleet would create for each task of a DAG",
                          func=lazy_load_command(here + "generate_dag_yaml"),
                          args=(ARG_DAG_ID, ARG_BUNDLE_NAME, ARG_OUTPUT_PATH, team,
                                ARG_VERBOSE)),
        ))


def get_cli_commands() -> list[Any]:
    """The provider's ``cli`` entry: the ``airflow podfleet`` group."""
    return [command_group()]
