"""Pods that carry a task's labels but are not the pod podfleet created for its launch (made
by hand, by another tool, or replayed by someone with API access): their events change no
task, and podfleet deletes them. The task's own pod is the one whose uid the row holds."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from kubernetes import client as k8s
from pipeline_support import Pipeline, submission, task_key

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor
from podfleet.simulator.cluster import fate


def _foreign_pod(pipeline: Pipeline, like: dict[str, Any], name: str,
                 annotations: dict[str, str]) -> str:
    """Create, with the official client, a copy of ``like``'s identity (its labels and
    annotations: a pod re-applied from its YAML) under ``name``; returns its uid."""
    api = k8s.CoreV1Api(pipeline.sim.api_client())
    meta = like["metadata"]
    body = {"metadata": {"name": name, "labels": dict(meta["labels"]),
                         "annotations": {**meta.get("annotations", {}), **annotations}},
            "spec": {"containers": [{"name": "base", "image": "busybox"}]}}
    created = api.create_namespaced_pod(pipeline.namespace, body)
    api.api_client.close()
    return str(created.metadata.uid)


def _pod_exists(pipeline: Pipeline, name: str) -> bool:
    return any(p["metadata"]["name"] == name for p in pipeline.pods())


def _running_task(pipeline: Pipeline, seconds: str) -> tuple[Executor, TaskKey, dict[str, Any]]:
    """A task whose own pod runs for ``seconds``, at the default delete policy (always):
    its executor, key and pod."""
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    executor = pipeline.started_executor()
    key = task_key(0)
    executor.submit_many([submission(key, {fate.DURATION: seconds})])
    pipeline.run_until(executor, lambda: pipeline.rows_by_key()[key].task_state
                       is TaskState.RUNNING, 30, "the task to run")
    return executor, key, pipeline.pods_by_launch()[pipeline.rows_by_key()[key].launch_id]


def test_a_foreign_pod_with_a_running_tasks_labels_changes_nothing_and_is_deleted(
        pipeline: Pipeline) -> None:
    # Given a task whose own pod runs for 4 s (finished pods deleted: the default policy)
    executor, key, own = _running_task(pipeline, "4")
    # When a pod with the same labels but another uid appears, and fails at once
    foreign = f"{own['metadata']['name']}-foreign"
    created_at = time.monotonic()
    _foreign_pod(pipeline, own, foreign, {fate.DURATION: "30", fate.EXIT_CODE: "3"})
    # Then podfleet deletes it, long before it would have ended by itself
    pipeline.run_until(executor, lambda: not _pod_exists(pipeline, foreign), 15,
                       "the foreign pod to be deleted")
    assert time.monotonic() - created_at < 10
    # ... and the task finishes as its own pod does, reported once
    pipeline.run_until_finished(executor, [key], timeout=30)
    row = pipeline.rows_by_key()[key]
    assert (row.task_state, row.reason, row.pod_uid) == (
        TaskState.SUCCESS, None, own["metadata"]["uid"])
    assert pipeline.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1})


def test_a_foreign_pod_under_a_finished_tasks_pod_name_changes_nothing_and_is_deleted(
        pipeline: Pipeline) -> None:
    # Given a task that finished and whose pod was deleted (the default policy)
    executor, key, own = _running_task(pipeline, "1")
    name, own_uid = own["metadata"]["name"], own["metadata"]["uid"]
    pipeline.run_until_finished(executor, [key], timeout=30)
    pipeline.run_until(executor, lambda: not _pod_exists(pipeline, name), 15,
                       "its pod to be deleted")
    # When a pod of the same name and labels is created again, and fails after a while
    _foreign_pod(pipeline, own, name, {fate.DURATION: "30", fate.EXIT_CODE: "3"})
    # Then podfleet deletes it
    pipeline.run_until(executor, lambda: not _pod_exists(pipeline, name), 15,
                       "the foreign pod to be deleted")
    # ... and the task stays as its own pod left it, reported once
    settle = time.monotonic() + 1.0
    pipeline.run_until(executor, lambda: time.monotonic() > settle, 10, "settling")
    row = pipeline.rows_by_key()[key]
    assert (row.task_state, row.reason, row.pod_uid) == (TaskState.SUCCESS, None, own_uid)
    assert pipeline.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1})
