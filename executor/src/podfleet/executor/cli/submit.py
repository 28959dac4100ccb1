"""``podfleet submit``: queue tasks to run as pods, from the command line or a JSONL file.

Examples::

    podfleet submit --dag-id etl --task-id load --run-id r1 -- python -c 'print(1)'
    podfleet submit --dag-id etl --task-id fan --run-id r1 --count 500 -- sleep 1
    podfleet submit --from-file tasks.jsonl     # one {"dag_id", "task_id", ...} per line

The tasks are owned by a short-lived executor that stops when the command ends, so a running
executor (``podfleet executor``, or a scheduler's) adopts them and follows them to the end.
With ``--wait`` the command follows them itself and its exit code is their outcome: 0 when
every task succeeded, 1 when any failed or was revoked, 3 when ``--timeout`` passed first.
Bad input prints why and exits 2 with nothing written; tasks written while Redis is
unreachable are reported and the command exits 1 (they are sent once an executor syncs).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import orjson

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor.cli.preflight import fail, schema_problem
from podfleet.executor.submission import InvalidSubmission, TaskSubmission, deadline_seconds
from podfleet.settings import Settings, redact_url

NAME = "submit"
#: ``podfleet --help``'s line for this subcommand.
HELP = "submit tasks to run as pods (--wait: follow them)"
FILE_FIELDS = ("dag_id", "task_id", "run_id", "map_index", "try_number", "command", "queue",
               "executor_config", "deadline", "priority")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dag-id")
    parser.add_argument("--task-id")
    parser.add_argument("--run-id")
    parser.add_argument("--map-index", type=int, default=None,
                        help="map index (default -1; with --count: 0..N-1)")
    parser.add_argument("--try-number", type=int, default=1)
    parser.add_argument("--queue", default=None,
                        help="task queue: one of PODFLEET_QUEUE_RATES has its own launch queue "
                             "and rate; any other shares the default's")
    parser.add_argument("--priority", type=int, default=0,
                        help="priority weight: when slots are short, higher is sent first")
    parser.add_argument("--executor-config", default=None, metavar="JSON",
                        help="per-task pod settings as JSON, e.g. "
                             "'{\"pod_override\": {...}}'")
    parser.add_argument("--cluster", default=None, metavar="NAME",
                        help="run on this configured cluster (PODFLEET_CLUSTERS_FILE), as "
                             "executor_config's 'cluster'; with --from-file, every task's; "
                             "an unknown name is refused, naming it")
    parser.add_argument("--deadline", default=None, metavar="TIME",
                        help="fail the task as expired if its pod is not created by TIME: "
                             "epoch seconds or an ISO-8601 time with a timezone "
                             "(2026-12-07T18:00:00Z), as the JSONL 'deadline' field; a time "
                             "already past is refused")
    parser.add_argument("--count", type=int, default=1,
                        help="submit N tries of the task as map indexes 0..N-1")
    parser.add_argument("--from-file", default=None, metavar="PATH",
                        help="JSONL file of tasks ('-' = stdin); fields: "
                             + ", ".join(FILE_FIELDS))
    parser.add_argument("--json", action="store_true", help="print the launch ids as JSON")
    parser.add_argument("--wait", action="store_true",
                        help="follow the tasks to their end; exit 0 if all succeeded, 1 if "
                             "any failed")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="with --wait: stop following after SECONDS (exit 3)")
    # Not "command": podfleet's own parser keeps the subcommand's name under that dest.
    parser.add_argument("task_command", nargs=argparse.REMAINDER, metavar="CMD",
                        help="the task's command and arguments, after --")


EXIT_TASK_FAILED = 1
EXIT_TIMEOUT = 3


def run(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.wait:
        return fail(NAME, "--timeout only applies with --wait")
    if args.timeout is not None and not args.timeout > 0:
        return fail(NAME, "--timeout must be a positive number of seconds")
    try:
        submissions = _submissions(args)
    except ValueError as exc:
        return fail(NAME, str(exc))
    settings = Settings.from_env()
    problem = schema_problem(settings.database.url)
    if problem:
        return fail(NAME, problem)
    import sqlalchemy as sa

    from podfleet.executor import Executor, ExecutorIdInUse
    from podfleet.executor.db_errors import describe_db_error

    executor = Executor(settings)
    try:
        try:
            launch_ids = executor.submit_many(submissions)
        except InvalidSubmission as exc:
            return fail(NAME, str(exc))
        except ExecutorIdInUse as exc:
            return fail(NAME, str(exc))
        except sa.exc.DBAPIError as exc:
            return fail(NAME, describe_db_error(exc, settings.database.url))
        unsent = _report_sent(executor, len(launch_ids), settings, quiet=args.json)
        if args.json:
            print(orjson.dumps({"executor_id": executor.executor_id,
                                "launch_ids": launch_ids}).decode())
        if not args.wait:
            return EXIT_TASK_FAILED if unsent else 0
        keys = {TaskKey.coerce(s.key) for s in submissions}
        return follow(executor, keys, timeout=args.timeout)
    except KeyboardInterrupt:
        print("podfleet submit: stopped following; a running executor adopts the tasks",
              file=sys.stderr)
        return 130
    finally:
        executor.terminate()


def _report_sent(executor: Any, submitted: int, settings: Settings, *, quiet: bool) -> bool:
    """Say how many tasks went to the launch queue and how many wait; True when Redis
    could not be reached (the tasks are written but nobody has been told to launch them)."""
    import redis

    counts = executor.slot_counts()
    try:
        executor.redis.ping()
        redis_down: str | None = None
    except redis.RedisError as exc:
        redis_down = str(exc)
    if redis_down is not None:
        print(f"podfleet submit: {submitted} task(s) written as executor "
              f"{executor.executor_id}, but Redis ({redact_url(settings.redis.url)}) cannot "
              f"be reached: {redis_down}. They stay queued and are sent when an executor "
              "syncs with Redis back.", file=sys.stderr)
        return True
    if not quiet:
        line = (f"submitted {submitted} task(s) as executor {executor.executor_id}: "
                f"{counts.sent} sent to the launch queue")
        if counts.waiting:
            line += (f", {counts.waiting} waiting for a slot (PODFLEET_PARALLELISM="
                     f"{settings.executor.parallelism}); an executor sends them as slots open")
        print(line)
    return False


def follow(executor: Any, keys: set[TaskKey], *, timeout: float | None,
           poll_seconds: float = 0.2) -> int:
    """Sync until every task in ``keys`` is terminal; print each end and a summary.

    Returns 0 when all succeeded, 1 when any failed or was revoked, 3 on ``timeout``.
    """
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    outcomes: dict[TaskKey, tuple[TaskState, str | None]] = {}
    while len(outcomes) < len(keys):
        if deadline is not None and time.monotonic() >= deadline:
            left = len(keys) - len(outcomes)
            print(f"podfleet submit: {left} task(s) not finished after {timeout:g}s; "
                  "a running executor adopts them", file=sys.stderr)
            _summary(outcomes)
            return EXIT_TIMEOUT
        executor.sync()
        for key, (state, info) in executor.get_event_buffer().items():
            if key in keys and state.is_terminal and key not in outcomes:
                outcomes[key] = (state, info)
                reason = f": {info}" if info and state is not TaskState.SUCCESS else ""
                print(f"{key} {state.value}{reason}", flush=True)
        if len(outcomes) < len(keys):
            time.sleep(poll_seconds)
    _summary(outcomes)
    failed = any(state is not TaskState.SUCCESS for state, _ in outcomes.values())
    return EXIT_TASK_FAILED if failed else 0


def _summary(outcomes: dict[TaskKey, tuple[TaskState, str | None]]) -> None:
    by_state: dict[str, int] = {}
    for state, _ in outcomes.values():
        by_state[state.value] = by_state.get(state.value, 0) + 1
    print("finished: " + (", ".join(f"{n} {s}" for s, n in sorted(by_state.items()))
                          or "none"))


def _submissions(args: argparse.Namespace) -> list[TaskSubmission]:
    """The tasks the arguments describe; ValueError with a readable reason otherwise."""
    command = list(args.task_command or [])
    if command and command[0] == "--":
        command = command[1:]
    if args.from_file:
        if command or args.dag_id or args.task_id or args.run_id:
            raise ValueError("--from-file takes every task from the file: give no "
                             "--dag-id/--task-id/--run-id or command with it")
        return [_on_cluster(task, args.cluster) for task in _read_file(args.from_file)]
    missing = [flag for flag, value in (("--dag-id", args.dag_id), ("--task-id", args.task_id),
                                         ("--run-id", args.run_id)) if not value]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or use --from-file)")
    if not command:
        raise ValueError("missing the task's command: put it after --, e.g. -- echo hello")
    if args.count < 1:
        raise ValueError("--count must be at least 1")
    config = _json_arg(args.executor_config, "--executor-config")
    deadline = None if args.deadline is None else deadline_seconds(args.deadline)
    if args.count == 1:
        map_indexes = [-1 if args.map_index is None else args.map_index]
    else:
        start = 0 if args.map_index is None else args.map_index
        map_indexes = list(range(start, start + args.count))
    return [_on_cluster(TaskSubmission(
        (args.dag_id, args.task_id, args.run_id, index, args.try_number), command, args.queue,
        config, deadline, args.priority), args.cluster) for index in map_indexes]


def _on_cluster(task: TaskSubmission, cluster: str | None) -> TaskSubmission:
    """``task`` placed on ``cluster`` (``--cluster``) through its executor_config; a config
    that is not an object, or names another cluster, is refused naming both."""
    if cluster is None:
        return task
    config = task.executor_config if task.executor_config is not None else {}
    if not isinstance(config, dict):
        raise ValueError(f"--cluster needs executor_config to be an object, not "
                         f"{type(config).__name__}")
    named = config.get("cluster")
    if named is not None and named != cluster:
        raise ValueError(f"--cluster {cluster!r} and executor_config's cluster {named!r} "
                         "disagree")
    return dataclasses.replace(task, executor_config={**config, "cluster": cluster})


def _read_file(path: str) -> list[TaskSubmission]:
    try:
        lines = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    submissions: list[TaskSubmission] = []
    for number, line in enumerate(lines.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}:{number}: each line must be a JSON object")
        unknown = sorted(set(data) - set(FILE_FIELDS))
        if unknown:
            raise ValueError(f"{path}:{number}: unknown field(s) {', '.join(unknown)}")
        key = (data.get("dag_id"), data.get("task_id"), data.get("run_id"),
               data.get("map_index", -1), data.get("try_number", 1))
        deadline = data.get("deadline")
        if deadline is not None:
            try:
                deadline = deadline_seconds(deadline)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
        # Validation (command_problem) judges the command, whatever its type here.
        submissions.append(TaskSubmission(key, data.get("command"),  # type: ignore[arg-type]
                                          data.get("queue"),
                                          data.get("executor_config"), deadline,
                                          data.get("priority", 0)))
    if not submissions:
        raise ValueError(f"{path} holds no tasks")
    return submissions


def _json_arg(text: str | None, flag: str) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{flag} is not valid JSON: {exc}") from None
