"""Redis refusing writes mid-run (``maxmemory`` reached under ``noeviction``), then taking
them again: every task still reaches its terminal state once and every finished pod is
deleted, at default settings (issue #18, item 1).

Before the fix the watcher folded a refused batch into its in-memory records and watched on,
so the pods that finished while Redis was full stayed Succeeded, undeleted, their tasks
LAUNCHED or RUNNING for good.
"""

from __future__ import annotations

from collections import Counter

import redis
from pipeline_support import Pipeline, submit_tasks, wait_for

from podfleet.contracts.states import TaskState
from podfleet.local.redis_server import RedisServer


def _refuse_writes(client: redis.Redis) -> None:
    """Put Redis at its memory limit: every write that may grow memory is refused (OOM)."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(used + 1024))


def _accept_writes(client: redis.Redis) -> None:
    client.config_set("maxmemory", "0")


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
