"""What a submit carries, and the checks it must pass before anything is written.

Validation happens in full before the first write: a batch with one bad task is refused as a
whole with every problem named, so a caller never has to find out which half of its batch
made it into the DB.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from podfleet.contracts.clusters import (
    NoClusterMatches,
    Placement,
    PlacementError,
    eligible_clusters,
)
from podfleet.contracts.keys import InvalidTaskKey, TaskKey
from podfleet.contracts.messages import LaunchRequest, command_problem, is_launch_id
from podfleet.contracts.queues import queue_name_problem
from podfleet.pods import InvalidExecutorConfig, task_namespace, validate_executor_config
from podfleet.pods.factory import PodFactory
from podfleet.settings import ClusterSettings

# etcd stores at most about 1.5 MiB per object (its default request limit); the API server
# adds status and managed fields to what it is sent, so a pod is refused well before that.
POD_MAX_BYTES = 1024 * 1024
# The priority column is a 32-bit integer, as Airflow's priority_weight is.
PRIORITY_RANGE = (-(2**31), 2**31 - 1)


class InvalidSubmission(ValueError):
    """A submit refused before anything was written; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:10]
        more = len(self.problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"submit refused, nothing was written: {text}")


class DuplicateSubmission(InvalidSubmission):
    """A task try is already queued or running (submit it again once it has finished)."""


@dataclass(frozen=True, slots=True)
class TaskSubmission:
    """One task try to run, as given to ``Executor.submit_many``.

    ``key`` may be a :class:`TaskKey`, an Airflow ``TaskInstanceKey`` or a 4/5-tuple;
    ``deadline`` (epoch seconds) is the latest time its pod may still be created;
    ``priority`` (Airflow's ``priority_weight``): when slots are short, higher goes first.
    ``launch_id`` (32 lowercase hex characters) names the launch, hence the pod, when the
    caller already has an id for this try (Airflow's pre-assigned ``external_executor_id``);
    it must never have been used before, since a launch creates at most one pod, ever.
    Default: a fresh random id.
    """

    key: Any
    command: Sequence[str]
    queue: str | None = None
    executor_config: Any = None
    deadline: float | None = None
    priority: int = 0
    launch_id: str | None = None


@dataclass(frozen=True, slots=True)
class ValidTask:
    """A submission that passed every check, normalised for the DB and the launch message."""

    key: TaskKey
    command: list[str]
    queue: str | None
    executor_config: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    priority: int = 0
    launch_id: str | None = None


def deadline_seconds(value: Any) -> float:
    """A deadline given as epoch seconds (a number, or its text) or as an ISO-8601 time with
    a timezone (``2026-12-07T18:00:00Z``), as epoch seconds; ValueError saying what it must
    be otherwise. The one unit of every deadline podfleet takes: an absolute time."""
    from datetime import datetime

    if isinstance(value, bool):
        raise ValueError(f"deadline must be epoch seconds or an ISO-8601 time, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                raise ValueError(f"deadline {value!r} needs a timezone (e.g. Z or +00:00)")
            return moment.timestamp()
    raise ValueError(f"deadline must be epoch seconds or an ISO-8601 time such as "
                     f"2026-12-07T18:00:00Z, got {value!r}")


def task_clusters(clusters: ClusterSettings, config: dict[str, Any], queue: str | None,
                  namespace: str, own: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The clusters a task may run on, in configured order: the one it names
    (``executor_config`` ``cluster`` or ``pod_override``'s ``podfleet.io/cluster``
    annotation), those its ``cluster_selector`` matches, or its queue's
    (``PODFLEET_QUEUE_CLUSTERS``), each watching its namespace; with ``own``
    (``PODFLEET_EXECUTOR_CLUSTERS``: a team's clusters), only those. Raises
    :class:`~podfleet.contracts.clusters.PlacementError` naming the cluster or selector."""
    eligible = eligible_clusters(Placement.from_executor_config(config), queue=queue,
                                 namespace=namespace, clusters=clusters.configured,
                                 queue_clusters=clusters.queue_clusters)
    if not own:
        return eligible
    kept = tuple(name for name in eligible if name in own)
    if not kept:
        raise NoClusterMatches(
            f"cluster(s) {', '.join(eligible)} are not this executor's "
            f"(PODFLEET_EXECUTOR_CLUSTERS: {', '.join(own)})")
    return kept


def validate_submissions(submissions: Iterable[TaskSubmission], *, default_namespace: str,
                         watched_namespaces: tuple[str, ...],
                         pods: PodFactory | None = None,
                         now: float | None = None,
                         clusters: ClusterSettings | None = None,
                         own_clusters: tuple[str, ...] = ()) -> list[ValidTask]:
    """Check every submission; raise InvalidSubmission naming each problem, or return them.

    A task's own namespace must be one the watcher watches (``("*",)``: any), or its pod
    would run unobserved and its task would never end. With ``pods``, each task's pod is
    built as the launcher will build it and must pass the pod policy
    (:mod:`podfleet.pods.policy`: task namespaces, service accounts, Pod Security level).
    With ``now`` (epoch seconds), a deadline already past is refused. With ``clusters``, a
    task must name a configured cluster, or select at least one (:func:`task_clusters`),
    among ``own_clusters`` when given.
    """
    valid: list[ValidTask] = []
    problems: list[str] = []
    seen: set[TaskKey] = set()
    seen_launches: set[str] = set()
    for index, submission in enumerate(submissions):
        task_problems: list[str] = []
        key: TaskKey | None = None
        try:
            key = TaskKey.coerce(submission.key)
        except InvalidTaskKey as exc:
            task_problems.append(f"key: {exc}")
        trouble = command_problem(submission.command)
        if trouble:
            task_problems.append(f"command {trouble}")
        queue = submission.queue
        trouble = None if queue is None else queue_name_problem(queue)
        if trouble:
            task_problems.append(f"queue {queue!r} is invalid: {trouble}")
        priority = submission.priority
        if (isinstance(priority, bool) or not isinstance(priority, int)
                or not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]):
            task_problems.append(f"priority must be a 32-bit integer, got {priority!r}")
        deadline = submission.deadline
        if deadline is not None and (
                isinstance(deadline, bool) or not isinstance(deadline, int | float)
                or not math.isfinite(deadline) or deadline <= 0):
            task_problems.append("deadline must be a positive number (epoch seconds)")
        elif deadline is not None and now is not None and deadline <= now:
            task_problems.append(f"deadline {deadline:.0f} (epoch seconds) is already past "
                                 f"by {now - deadline:.0f}s")
        launch_id = submission.launch_id
        if launch_id is not None and (not isinstance(launch_id, str)
                                      or not is_launch_id(launch_id)):
            task_problems.append(
                f"launch_id {launch_id!r} must be 32 lowercase hex characters")
        config: dict[str, Any] = {}
        try:
            config = validate_executor_config(submission.executor_config)
        except InvalidExecutorConfig as exc:
            task_problems.append(str(exc))
        namespace = task_namespace(config, default_namespace)
        # With several clusters each watches namespaces of its own: task_clusters checks.
        several = clusters is not None and len(clusters.configured) > 1
        if (not several and watched_namespaces != ("*",)
                and namespace not in watched_namespaces):
            task_problems.append(
                f"namespace {namespace!r} is not watched (PODFLEET_WATCH_NAMESPACES: "
                f"{','.join(watched_namespaces)}): its pod would never be seen to finish")
        if clusters is not None and not task_problems:
            try:
                task_clusters(clusters, config, queue, namespace, own_clusters)
            except PlacementError as exc:
                task_problems.append(str(exc))
        if pods is not None and key is not None and not task_problems:
            task_problems.extend(_pod_problems(pods, key, submission.command, namespace,
                                               config))
        if key is not None:
            if key in seen:
                task_problems.append("the same task try appears twice in this submit")
            seen.add(key)
        if launch_id is not None:
            if launch_id in seen_launches:
                task_problems.append(f"launch_id {launch_id} appears twice in this submit")
            seen_launches.add(launch_id)
        if task_problems or key is None:
            where = f"task {index}" + (f" ({key})" if key is not None else "")
            problems.extend(f"{where}: {p}" for p in task_problems)
            continue
        valid.append(ValidTask(key=key, command=list(submission.command), queue=queue,
                               executor_config=config,
                               deadline=None if deadline is None else float(deadline),
                               priority=priority, launch_id=launch_id))
    if problems:
        raise InvalidSubmission(problems)
    if not valid:
        raise InvalidSubmission(["no tasks to submit"])
    return valid


def _pod_problems(pods: PodFactory, key: TaskKey, command: Sequence[str], namespace: str,
                  config: dict[str, Any]) -> list[str]:
    """Why the pod the launcher would build for this task may not run, if it may not."""
    request = LaunchRequest(key=key, launch_id="0" * 32, command=tuple(command),
                            executor_id="submit", namespace=namespace, queued_at=0.0,
                            executor_config=config)
    try:
        pod = pods.build(request)
    except InvalidExecutorConfig as exc:
        return [str(exc)]
    size = len(orjson.dumps(pod))
    if size > POD_MAX_BYTES:
        return [f"its pod would be {size:,} bytes (the command alone "
                f"{sum(len(part.encode()) for part in command):,}): more than the API server "
                f"stores ({POD_MAX_BYTES:,} bytes at most here); pass large inputs another way"]
    return []
