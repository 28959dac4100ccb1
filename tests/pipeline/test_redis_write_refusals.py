"""Redis refusing writes mid-run (``maxmemory`` reached under ``noeviction``), then taking
them again: every task still reaches its terminal state once and every finished pod is
deleted, at default settings (issue #18, item 1).

Before the fix the watcher folded a refused batch into its in-memory records and watched on,
so the pods that finished while Redis was full stayed Succeeded, undeleted, their tasks
LAUNCHED or RUNNING for good. And dramatiq's consumer thread, moving a due delayed launch (one
handed back to wait for quota) through the refusing Redis, lost it from memory and then died
putting the others back, so those launches stayed in the live worker's unacked set and their
tasks QUEUED until the stuck-QUEUED timeout.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis
from pipeline_support import Pipeline, submission, submit_tasks, task_key, wait_for

from podfleet.contracts.states import TaskState
from podfleet.local.redis_server import RedisServer
from podfleet.simulator.cluster import fate


def _refuse_writes(client: redis.Redis) -> None:
    """Put Redis at its memory limit: every write that may grow memory is refused (OOM)."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(used + 1024))


def _accept_writes(client: redis.Redis) -> None:
    client.config_set("maxmemory", "0")


def _set_pod_quota(pipeline: Pipeline, pods: int) -> None:
    """The namespace's ResourceQuota ``q`` lets ``pods`` pods exist at once."""
    path = f"/api/v1/namespaces/{pipeline.namespace}/resourcequotas"
    hard = {"pods": str(pods)}
    if any(q["metadata"]["name"] == "q"
           for q in pipeline.kube.list_resource_quotas(pipeline.namespace)):
        pipeline.kube.request("PATCH", f"{path}/q", body={"spec": {"hard": hard}},
                              content_type="application/merge-patch+json")
    else:
        pipeline.kube.request("POST", path, body={"metadata": {"name": "q"},
                                                  "spec": {"hard": hard}})


def _refused(client: redis.Redis) -> bool:
    """True once a write is refused for memory (the first few may still fit under the limit)."""
    for n in range(64):
        try:
            client.set(f"pf-test:probe:{n}", "x" * 4096)
        except redis.exceptions.OutOfMemoryError:
            return True
    return False


def _succeeded_pods(pipeline: Pipeline) -> int:
    return sum(1 for pod in pipeline.pods() if pod["status"].get("phase") == "Succeeded")


@pytest.mark.slow
def test_tasks_whose_pods_finish_while_redis_refuses_writes_complete_once_it_takes_them(
        private_pipeline: Pipeline, private_redis: RedisServer) -> None:
    pipeline = private_pipeline
    # Given a fleet at default settings (finished pods deleted) running short tasks
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    executor = pipeline.started_executor()
    keys = submit_tasks(executor, 30, "1.5")
    pipeline.run_until(executor, lambda: pipeline.stats().creates.accepted == len(keys), 60,
                       "every pod created")
    # When Redis reaches maxmemory while the pods run, and refuses writes until they finish
    admin = pipeline.redis
    _refuse_writes(admin)
    try:
        assert _refused(admin)
        wait_for(lambda: _succeeded_pods(pipeline) == len(keys), timeout=60,
                 what="every pod to finish while Redis refuses writes")
        pipeline.sync(executor)  # the executor rides the refusal out too
    finally:
        _accept_writes(admin)
    # Then, once Redis takes writes again, every task succeeds, reported once
    pipeline.run_until_finished(executor, keys, timeout=90)
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in keys})
    assert {row.task_state for row in pipeline.rows()} == {TaskState.SUCCESS}
    # ... and every finished pod is deleted, as the policy says
    wait_for(lambda: not pipeline.pods(), timeout=60, what="every finished pod deleted")
    assert pipeline.stats().creates.accepted == len(keys)
    pipeline.check_workers_alive()


def test_launches_held_as_delayed_messages_while_redis_refuses_writes_launch_once_it_takes_them(
        private_pipeline: Pipeline, private_redis: RedisServer) -> None:
    pipeline = private_pipeline
    # Given a fleet at default settings whose namespace quota is full (one long task holds
    # its one pod), so the launches of 8 more tasks wait: each goes back to the broker as a
    # delayed message every quota poll (2 s), held in a worker's memory until due
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    _set_pod_quota(pipeline, 1)
    pipeline.start_worker()
    executor = pipeline.executor()
    executor.start()
    executor.submit_many([submission(task_key(0), {fate.DURATION: "3600"})])
    pipeline.run_until(executor, lambda: pipeline.stats().creates.accepted == 1, 60,
                       "the long task's pod")
    keys = [task_key(n) for n in range(1, 9)]
    executor.submit_many([submission(key, {fate.DURATION: "0.5"}) for key in keys])
    pipeline.run_until(executor, lambda: all(
        pipeline.rows_by_key()[key].waiting_reason for key in keys), 60,
        "the 8 launches to wait on the quota")
    # When Redis refuses writes for longer than a poll, so the delayed messages fall due while
    # it does, then takes them again and the quota is raised
    admin = pipeline.redis
    _refuse_writes(admin)
    try:
        assert _refused(admin)
        time.sleep(5)
    finally:
        _accept_writes(admin)
    _set_pod_quota(pipeline, 20)
    # Then every waiting task runs and succeeds, reported once, well before any timeout
    pipeline.run_until_finished(executor, keys, timeout=90)
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in keys})
    pipeline.check_workers_alive()
