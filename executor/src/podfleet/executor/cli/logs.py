"""``podfleet logs TASK``: a task try's log, from its pod while it runs, from the archive after.

TASK is one of:

* ``dag_id/task_id/run_id[/map_index[/try]]`` - map_index defaults to -1 (not mapped), the
  try to the latest one the metadata DB knows;
* a launch id, or a pod name (as ``podfleet status`` and ``kubectl get pods`` show them).

A run id containing ``/`` cannot be written in the first form (Airflow's default run id
pattern does not allow it); name such a task by its launch id or pod name.
"""

from __future__ import annotations

import argparse
import sys

from podfleet.contracts.keys import InvalidTaskKey, TaskKey
from podfleet.executor.cli.preflight import fail, schema_problem
from podfleet.executor.db import make_engine, make_sessionmaker
from podfleet.executor.logs import (
    FOLLOW_WAIT_SECONDS,
    LogTarget,
    TaskLogs,
    TaskLogUnavailable,
    archive_failures,
)
from podfleet.kube.clusters import ClusterClients
from podfleet.kube.errors import KubeError, Unreachable
from podfleet.logs.archive import LogArchive
from podfleet.logs.storage import ArchiveUnavailable
from podfleet.settings import Settings

NAME = "logs"
#: ``podfleet --help``'s line for this subcommand.
HELP = "show or follow a task's log (pod or archive)"


class BadTaskReference(ValueError):
    """TASK is in none of the accepted forms; the message says what is wrong."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "task", metavar="TASK",
        help="dag_id/task_id/run_id[/map_index[/try]], a launch id, or a pod name")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="stream the log until the task's container exits")
    parser.add_argument("--tail", type=int, default=None, metavar="N",
                        help="only the last N lines")
    parser.add_argument("--wait-seconds", type=float, default=FOLLOW_WAIT_SECONDS,
                        metavar="SECONDS",
                        help="with -f: give up (exit 1) if the task's pod has not started "
                             f"after SECONDS (default {FOLLOW_WAIT_SECONDS:g}); what it waits "
                             "for is printed to stderr")


def parse_reference(text: str) -> tuple[str, str, str, int, int | None] | str:
    """(dag_id, task_id, run_id, map_index, try or None) for the key form, else the text
    itself (a launch id or pod name)."""
    text = text.strip()
    if not text:
        raise BadTaskReference("TASK is empty")
    if "/" not in text:
        return text
    parts = text.split("/")
    if len(parts) < 3 or len(parts) > 5 or not all(parts[:3]):
        raise BadTaskReference(
            f"TASK {text!r} must be dag_id/task_id/run_id[/map_index[/try]] (a run id "
            f"containing '/' cannot be given this way: use the launch id or pod name)")
    numbers: list[int] = []
    for name, value in zip(("map_index", "try"), parts[3:], strict=False):
        try:
            numbers.append(int(value))
        except ValueError:
            raise BadTaskReference(
                f"TASK {text!r}: {name} must be an integer, got {value!r}") from None
    if numbers and numbers[0] < -1:
        raise BadTaskReference(f"TASK {text!r}: map_index must be ≥ -1")
    if len(numbers) > 1 and numbers[1] < 0:
        raise BadTaskReference(f"TASK {text!r}: try must be ≥ 0")
    map_index = numbers[0] if numbers else -1
    try_number = numbers[1] if len(numbers) > 1 else None
    return parts[0], parts[1], parts[2], map_index, try_number


def find(logs: TaskLogs, text: str) -> LogTarget:
    reference = parse_reference(text)
    if isinstance(reference, str):
        return logs.by_launch_or_pod(reference)
    dag_id, task_id, run_id, map_index, try_number = reference
    if try_number is None:
        return logs.latest_try(dag_id, task_id, run_id, map_index)
    try:
        key = TaskKey(dag_id, task_id, run_id, map_index, try_number)
    except InvalidTaskKey as exc:
        raise BadTaskReference(f"TASK {text!r}: {exc}") from None
    return logs.target(key)


def run(args: argparse.Namespace) -> int:
    if args.tail is not None and args.tail < 0:
        return fail(NAME, f"--tail must be ≥ 0, got {args.tail}")
    if not args.wait_seconds > 0:
        return fail(NAME, f"--wait-seconds must be positive, got {args.wait_seconds:g}")
    settings = Settings.from_env()
    problem = schema_problem(settings.database.url)
    if problem:
        return fail(NAME, problem)
    engine = make_engine(settings.database.url)
    clusters = ClusterClients(settings.clusters.configured)
    try:
        archive = LogArchive.open(settings.logs.archive) if settings.logs.archive else None
        logs = TaskLogs(make_sessionmaker(engine), clusters.client, archive,
                        settings.kubernetes.namespace, archive_failures(settings))
        target = find(logs, args.task)
        if args.follow:
            def waiting(what: str) -> None:
                print(f"podfleet logs: {what}", file=sys.stderr, flush=True)

            for text in logs.follow(target, tail=args.tail, wait_seconds=args.wait_seconds,
                                    waiting=waiting):
                sys.stdout.write(text)
                sys.stdout.flush()
        else:
            sys.stdout.write(logs.read(target, tail=args.tail).text)
        return 0
    except (BadTaskReference, TaskLogUnavailable, ArchiveUnavailable) as exc:
        return fail(NAME, str(exc))
    except KubeError as exc:
        return fail(NAME, f"the Kubernetes API answered: {exc}")
    except Unreachable as exc:
        return fail(NAME, f"the Kubernetes API did not answer: {exc}")
    finally:
        clusters.close()
        engine.dispose()
