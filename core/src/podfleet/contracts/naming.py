"""Pod names, labels and annotations: how a podfleet pod says which task try it runs.

A pod's name derives from its launch id alone, so every delivery of the same launch message
names the same pod (the API answers 409 to the second create), while a deliberate relaunch of
the try gets a new launch id and so a new pod. Label values must satisfy Kubernetes' label
rules, so they are sanitised (and hashed when anything had to change); the raw values travel
in annotations with the same keys.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

import orjson

from podfleet.contracts.keys import TaskKey
from podfleet.kube.rules import DNS1123_LABEL_MAX, LABEL_VALUE_MAX, label_value_errors

LABEL_PREFIX = "podfleet.io/"
MANAGED_LABEL = LABEL_PREFIX + "managed"
MANAGED_VALUE = "true"
EXECUTOR_LABEL = LABEL_PREFIX + "executor"
DAG_ID_LABEL = LABEL_PREFIX + "dag-id"
TASK_ID_LABEL = LABEL_PREFIX + "task-id"
RUN_ID_LABEL = LABEL_PREFIX + "run-id"
MAP_INDEX_LABEL = LABEL_PREFIX + "map-index"
TRY_NUMBER_LABEL = LABEL_PREFIX + "try-number"
LAUNCH_ID_LABEL = LABEL_PREFIX + "launch-id"
# Annotation-only: when the task was queued, and the full key as JSON.
QUEUED_AT_ANNOTATION = LABEL_PREFIX + "queued-at"
TASK_KEY_ANNOTATION = LABEL_PREFIX + "task-key"
# Annotation-only: the task queue whose route launched the pod (``default`` for unlisted
# queues), so the watcher can count a queue's pods (PODFLEET_QUEUE_MAX_RUNNING).
QUEUE_ANNOTATION = LABEL_PREFIX + "queue"

MANAGED_SELECTOR = f"{MANAGED_LABEL}={MANAGED_VALUE}"

_SUFFIX_CHARS = 12
_PREFIX_MAX = DNS1123_LABEL_MAX - _SUFFIX_CHARS - 1
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_DASHES = re.compile(r"-{2,}")


def _digest(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def pod_name(key: TaskKey, launch_id: str) -> str:
    """The pod name for one launch: readable ``<dag>-<task>`` prefix, hashed launch-id suffix.

    Always a valid DNS-1123 label (≤ 63 characters), hence a valid pod name and hostname.
    """
    readable = _NOT_NAME_CHARS.sub("-", f"{key.dag_id}-{key.task_id}".lower())
    readable = _DASHES.sub("-", readable).strip("-")[:_PREFIX_MAX].rstrip("-") or "task"
    return f"{readable}-{_digest(launch_id, _SUFFIX_CHARS // 2)}"


def safe_label_value(raw: str) -> str:
    """``raw`` when it is a valid label value; else a sanitised value ending in a hash of ``raw``.

    The hash keeps distinct raw values distinct after sanitising; the result is always valid
    (≤ 63 characters, alphanumeric at both ends).
    """
    if not label_value_errors(raw):
        return raw
    suffix = _digest(raw, 4)
    cleaned = _NOT_LABEL_CHARS.sub("-", raw)
    cleaned = cleaned[: LABEL_VALUE_MAX - len(suffix) - 1]
    cleaned = cleaned.strip("-_.")
    return f"{cleaned}-{suffix}" if cleaned else suffix


def task_labels(key: TaskKey, launch_id: str, executor_id: str) -> dict[str, str]:
    """Labels that let the watcher select podfleet's pods and route them to their executor."""
    labels = {
        MANAGED_LABEL: MANAGED_VALUE,
        EXECUTOR_LABEL: safe_label_value(executor_id),
        DAG_ID_LABEL: safe_label_value(key.dag_id),
        TASK_ID_LABEL: safe_label_value(key.task_id),
        RUN_ID_LABEL: safe_label_value(key.run_id),
        TRY_NUMBER_LABEL: str(key.try_number),
        LAUNCH_ID_LABEL: launch_id,
    }
    # "-1" (not mapped) is not a valid label value (it must start alphanumeric); like
    # Airflow, the label is set for mapped tasks only. The annotation always carries it.
    if key.map_index >= 0:
        labels[MAP_INDEX_LABEL] = str(key.map_index)
    return labels


def task_annotations(key: TaskKey, launch_id: str, executor_id: str,
                     queued_at: float) -> dict[str, str]:
    """The raw, unsanitised values of the labels, plus the queue time for latency metrics."""
    return {
        EXECUTOR_LABEL: executor_id,
        DAG_ID_LABEL: key.dag_id,
        TASK_ID_LABEL: key.task_id,
        RUN_ID_LABEL: key.run_id,
        MAP_INDEX_LABEL: str(key.map_index),
        TRY_NUMBER_LABEL: str(key.try_number),
        LAUNCH_ID_LABEL: launch_id,
        TASK_KEY_ANNOTATION: orjson.dumps(key.as_list()).decode(),
        QUEUED_AT_ANNOTATION: repr(queued_at),
    }


@functools.lru_cache(maxsize=4096)
def _task_key(raw: str) -> TaskKey | None:
    """The key a task-key annotation holds, None when it holds none. Cached: the watcher
    reads the same pod's annotation at each of its ~6 watch events, and checking a key
    against Airflow's id rules costs more than the rest of judging the pod."""
    try:
        return TaskKey.from_list(orjson.loads(raw))
    except (ValueError, TypeError):
        return None


def task_identity(pod: dict[str, Any]) -> tuple[TaskKey, str, str] | None:
    """(key, launch_id, executor_id) of a podfleet pod read from its annotations, or None."""
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    raw = annotations.get(TASK_KEY_ANNOTATION)
    if not isinstance(raw, str):
        return None
    key = _task_key(raw)
    if key is None:
        return None
    launch_id = annotations.get(LAUNCH_ID_LABEL) or labels.get(LAUNCH_ID_LABEL)
    executor_id = annotations.get(EXECUTOR_LABEL) or labels.get(EXECUTOR_LABEL)
    if not launch_id or not executor_id:
        return None
    return key, launch_id, executor_id
